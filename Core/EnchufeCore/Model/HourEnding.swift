import Foundation

/// Placing rows labelled by the END of their interval in local time (`01:00`..`24:00`, or hours
/// `1`..`24`) — how Datadis and the distributors' CSVs write curves — at UTC interval starts.
///
/// The rows of a day are not keyed by their label: daylight-saving days come as 23 rows in spring,
/// and in autumn as 25 (a label repeated, or hours up to 25) or as 24 with the two repeated hours
/// merged in the row labelled `02:00`. So, per local day, in the order the rows came:
/// - as many rows as the day has intervals: row k is the k-th interval;
/// - 24 hourly rows on a 25-hour day, labels 1..24 once each: the `02:00` row covers two hours and is
///   split in two halves (`split`), so the day keeps its 25 hours and its total;
/// - otherwise (a day not complete yet): the label is the interval's local end, a label seen twice
///   being the second occurrence of that time; a time that does not exist places nothing.
public enum HourEnding {
    public struct Slot: Sendable, Equatable {
        /// The interval's start, UTC.
        public var start: Date
        /// The row's share of the value in each interval it covers (1, or 0.5 when split).
        public var share: Double
        /// The row covers two intervals (starting at `start` and one step later).
        public var split: Bool
    }

    /// `rows`: each row's local day and label (minutes after the day's midnight, e.g. 60 for `01:00`,
    /// 1440 for `24:00`), in source order. Returns a slot per row, nil where it fits nowhere.
    public static func place(_ rows: [(day: LocalDay, endMinutes: Int)], step: TimeInterval, zone: TimeZone) -> [Slot?] {
        var slots = [Slot?](repeating: nil, count: rows.count)
        var byDay: [LocalDay: [Int]] = [:]
        var order: [LocalDay] = []
        for (i, row) in rows.enumerated() {
            if byDay[row.day] == nil { order.append(row.day) }
            byDay[row.day, default: []].append(i)
        }
        for day in order {
            let indices = byDay[day]!
            let start = day.start(in: zone)
            let intervals = Int((day.end(in: zone).timeIntervalSince(start) / step).rounded())
            let labels = indices.map { rows[$0].endMinutes }
            if indices.count == intervals {
                for (k, i) in indices.enumerated() { slots[i] = Slot(start: start.addingTimeInterval(Double(k) * step), share: 1, split: false) }
            } else if step == 3600, intervals == 25, indices.count == 24, Set(labels).count == 24, labels.contains(120) {
                var k = 0
                for i in indices {
                    let merged = rows[i].endMinutes == 120
                    slots[i] = Slot(start: start.addingTimeInterval(Double(k) * step), share: merged ? 0.5 : 1, split: merged)
                    k += merged ? 2 : 1
                }
            } else {
                var seen: [Int: Int] = [:]
                for i in indices {
                    let minutes = rows[i].endMinutes
                    let occurrence = seen[minutes, default: 0]
                    seen[minutes] = occurrence + 1
                    slots[i] = localEnd(day: day, minutes: minutes, occurrence: occurrence, zone: zone).map {
                        Slot(start: $0.addingTimeInterval(-step), share: 1, split: false)
                    }
                }
            }
        }
        return slots
    }

    /// The instant of local `minutes` after `day`'s midnight (`occurrence`-th when clocks went back),
    /// nil if it does not exist.
    static func localEnd(day: LocalDay, minutes: Int, occurrence: Int, zone: TimeZone) -> Date? {
        let first = minutes == 24 * 60
            ? day.end(in: zone)
            : try? InstantFormat.local("\(day) \(String(format: "%02d:%02d", minutes / 60, minutes % 60))", zone: zone)
        guard var end = first else { return nil }
        if occurrence > 0 {
            let later = end.addingTimeInterval(3600 * Double(occurrence))
            guard LocalDay.wall(later, zone) == LocalDay.wall(end, zone) else { return nil }
            end = later
        }
        return end
    }
}
