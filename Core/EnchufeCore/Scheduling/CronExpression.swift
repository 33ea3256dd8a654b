import Foundation

/// A 5-field cron expression (`minute hour day-of-month month day-of-week`) with lists, ranges,
/// steps and names (`jan`..`dec`, `sun`..`sat`; 0 and 7 are Sunday). When both day fields are
/// restricted a day matches if either does, as in every cron since Vixie's.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    let minutes: [Int]
    let hours: [Int]
    let days: Set<Int>
    let months: Set<Int>
    let weekdays: Set<Int>  // 0 = Sunday
    let dayRestricted: Bool
    let weekdayRestricted: Bool
    /// True when the hour field is `*` (or a step over all hours): the job is periodic within the day.
    let everyHour: Bool

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ text: String) throws(Invalid) {
        self.text = text
        let fields = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 5 else {
            throw Invalid(description: "'\(text)' has \(fields.count) fields; a cron expression has 5: minute hour day-of-month month day-of-week")
        }
        minutes = try Self.field(fields[0], name: "minute", range: 0...59).sorted()
        hours = try Self.field(fields[1], name: "hour", range: 0...23).sorted()
        days = try Self.field(fields[2], name: "day-of-month", range: 1...31)
        months = try Self.field(fields[3], name: "month", range: 1...12, names: Self.monthNames)
        weekdays = Set(try Self.field(fields[4], name: "day-of-week", range: 0...7, names: Self.dayNames).map { $0 % 7 })
        dayRestricted = !fields[2].hasPrefix("*")
        weekdayRestricted = !fields[4].hasPrefix("*")
        everyHour = fields[1].hasPrefix("*")
    }

    public var description: String { text }

    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    private static func field(_ text: String, name: String, range: ClosedRange<Int>, names: [String] = []) throws(Invalid) -> Set<Int> {
        func value(_ s: Substring) throws(Invalid) -> Int {
            let lower = s.lowercased()
            if let i = names.firstIndex(of: lower) { return i + (range.lowerBound == 1 ? 1 : 0) }
            guard let v = Int(s), range.contains(v) else {
                throw Invalid(description: "\(name) field: '\(s)' is not in \(range.lowerBound)-\(range.upperBound)")
            }
            return v
        }
        var result: Set<Int> = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, !pieces[0].isEmpty else {
                throw Invalid(description: "\(name) field: '\(part)' is not a value, range or step")
            }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else {
                    throw Invalid(description: "\(name) field: step '\(pieces[1])' must be a positive number")
                }
                step = s
            }
            let lo: Int, hi: Int
            if pieces[0] == "*" {
                (lo, hi) = (range.lowerBound, range.upperBound)
            } else if let dash = pieces[0].firstIndex(of: "-") {
                lo = try value(pieces[0][..<dash])
                hi = try value(pieces[0][pieces[0].index(after: dash)...])
                guard lo <= hi else { throw Invalid(description: "\(name) field: range '\(pieces[0])' runs backwards") }
            } else {
                lo = try value(pieces[0])
                hi = pieces.count == 2 ? range.upperBound : lo
            }
            result.formUnion(stride(from: lo, through: hi, by: step))
        }
        return result
    }

    func matches(year: Int, month: Int, day: Int, weekday: Int) -> Bool {
        guard months.contains(month) else { return false }
        let dayOK = days.contains(day)
        let weekdayOK = weekdays.contains(weekday)
        switch (dayRestricted, weekdayRestricted) {
        case (true, true): return dayOK || weekdayOK
        case (true, false): return dayOK
        case (false, true): return weekdayOK
        case (false, false): return true
        }
    }
}
