import Foundation

/// One price series by the start of each of its intervals, in EUR/kWh whatever it came in (a unit
/// ending in `/MWh` is divided by 1,000), looked up for any interval it covers: an hourly price
/// serves its four quarter-hours. For the nodes that weigh energy at a price (`community.market`,
/// `optimize.schedule`).
public struct PriceSeries: Sendable {
    private var byStart: [Date: (value: Double, seconds: Int)] = [:]
    private var resolutions: Set<Int> = []

    public init(_ readings: some Sequence<Reading> = [Reading]()) {
        for r in readings { add(r) }
    }

    public var isEmpty: Bool { byStart.isEmpty }

    /// Adds (or replaces) the price of the interval `r` starts.
    public mutating func add(_ r: Reading) {
        let seconds = ISODuration.seconds(r.resolution) ?? 3600
        byStart[r.ts] = (Self.perKWh(r), seconds)
        resolutions.insert(seconds)
    }

    public func has(_ start: Date) -> Bool { byStart[start] != nil }

    /// The price, EUR/kWh, of the interval that starts at `ts` or covers it.
    public func at(_ ts: Date) -> Double? {
        if let exact = byStart[ts] { return exact.value }
        for seconds in resolutions.sorted() {
            let start = Date(timeIntervalSince1970: (ts.timeIntervalSince1970 / Double(seconds)).rounded(.down) * Double(seconds))
            if let covering = byStart[start], covering.seconds == seconds { return covering.value }
        }
        return nil
    }

    /// A price reading's value in EUR/kWh.
    public static func perKWh(_ r: Reading) -> Double {
        r.unit.uppercased().hasSuffix("/MWH") ? r.value / 1000 : r.value
    }
}
