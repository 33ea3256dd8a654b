import Foundation

/// A calendar day in a time zone (Europe/Madrid for REData and ESIOS): what the Spanish APIs are
/// asked for, and the unit pull connectors record their progress in. A day lasts 23, 24 or 25 hours.
public struct LocalDay: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public static let madrid = TimeZone(identifier: "Europe/Madrid")!

    public static func calendar(_ zone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }

    /// The day `date` falls on in `zone`.
    public init(containing date: Date, in zone: TimeZone = LocalDay.madrid) {
        let c = Self.calendar(zone).dateComponents([.year, .month, .day], from: date)
        self.init(year: c.year!, month: c.month!, day: c.day!)
    }

    /// `YYYY-MM-DD`, of a year from 1970 to 2099 (`ReadingLimits.instants`).
    public init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
            (1970...2099).contains(y), (1...12).contains(m), (1...31).contains(d)
        else { return nil }
        self.init(year: y, month: m, day: d)
        guard LocalDay(containing: start(in: .gmt), in: .gmt) == self else { return nil }  // 2021-02-30
    }

    /// A date as Spanish sources write it: `dd/mm/yyyy`, `yyyy/mm/dd` or `yyyy-mm-dd`.
    public init?(written text: String) {
        let parts = text.split(whereSeparator: { $0 == "/" || $0 == "-" }).map(String.init)
        guard parts.count == 3 else { return nil }
        self.init(parts[0].count == 4 ? "\(parts[0])-\(parts[1])-\(parts[2])" : "\(parts[2])-\(parts[1])-\(parts[0])")
    }

    public var description: String { String(format: "%04d-%02d-%02d", year, month, day) }

    /// Local midnight that starts the day.
    public func start(in zone: TimeZone = LocalDay.madrid) -> Date {
        Self.calendar(zone).date(from: DateComponents(year: year, month: month, day: day))!
    }

    /// The instant the day ends (the next day's start).
    public func end(in zone: TimeZone = LocalDay.madrid) -> Date { adding(days: 1).start(in: zone) }

    public func adding(days: Int) -> LocalDay {
        LocalDay(containing: Self.calendar(.gmt).date(byAdding: .day, value: days, to: start(in: .gmt))!, in: .gmt)
    }

    /// How many intervals of `resolution` the day holds: 24 hours, but 23 or 25 on DST days.
    public func intervals(of resolution: Duration, in zone: TimeZone = LocalDay.madrid) -> Int {
        Int((end(in: zone).timeIntervalSince(start(in: zone)) / resolution.seconds).rounded())
    }

    /// The local wall-clock time of `date` in `zone`, as text (to tell a repeated autumn time).
    /// Minutes since local midnight on the wall clock (the repeated hour of the day clocks go back
    /// has the same minutes twice).
    public static func minuteOfDay(_ date: Date, in zone: TimeZone) -> Int {
        let c = calendar(zone).dateComponents([.hour, .minute], from: date)
        return c.hour! * 60 + c.minute!
    }

    public static func wall(_ date: Date, _ zone: TimeZone) -> String {
        let c = calendar(zone).dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return "\(c.year!)-\(c.month!)-\(c.day!) \(c.hour!):\(c.minute!)"
    }

    public static func < (a: LocalDay, b: LocalDay) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }

    /// `today`, `tomorrow`, `yesterday`, `-7d` / `+1d` (days from today) or `YYYY-MM-DD`.
    public static func parse(_ text: String, today: LocalDay) -> LocalDay? {
        switch text.lowercased() {
        case "today": return today
        case "tomorrow": return today.adding(days: 1)
        case "yesterday": return today.adding(days: -1)
        default:
            if let day = LocalDay(text) { return day }
            let t = text.lowercased()
            guard t.hasSuffix("d"), let n = Int(t.dropLast().replacingOccurrences(of: "+", with: "")),
                t.hasPrefix("-") || t.hasPrefix("+")
            else { return nil }
            return today.adding(days: n)
        }
    }

    /// Whether `text` is a day `parse` accepts (for validating options).
    public static func isValid(_ text: String) -> Bool {
        parse(text, today: LocalDay(year: 2000, month: 1, day: 1)) != nil
    }
}

