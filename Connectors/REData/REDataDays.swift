import EnchufeCore
import Foundation
import HTTPPull

/// The days of a pull, as the Spanish APIs want them: local (Madrid) `start_date`/`end_date`.
extension LocalDay {
    var startParameter: String { "\(self)T00:00" }
    var endParameter: String { "\(self)T23:59" }
}

/// Whether each series of one day's readings has every value the day can hold at its resolution
/// (23, 24 or 25 hours; 92, 96 or 100 quarter-hours).
func isFullDay(_ readings: [Reading], day: LocalDay, series: [String]? = nil) -> Bool {
    let bySeries = Dictionary(grouping: readings, by: \.series)
    let wanted = series ?? Array(bySeries.keys)
    guard !wanted.isEmpty else { return false }
    return wanted.allSatisfy { name in
        guard let values = bySeries[name], let step = values.first.flatMap({ ISODuration.seconds($0.resolution) }), step > 0 else { return false }
        return Set(values.map(\.ts)).count == day.intervals(of: .seconds(step))
    }
}
