import EnchufeCore
import Foundation

/// The days a pull covers: `from`...`until` (inclusive), each `today`, `tomorrow`, `-7d` or a date,
/// read when the pull runs (`to` wires nodes, so it cannot end a range). A message may name its
/// own: a payload `{"day": ...}` or `{"from": ..., "until": ...}` (a back-fill asked for by hand;
/// `to` is accepted there too).
public struct DayWindow: Sendable {
    public var from: String
    public var to: String

    public enum Key {
        public static let day = OptionKey<String?>("day", doc: "One day: today, tomorrow, yesterday, -7d / +1d, or YYYY-MM-DD.", example: "tomorrow")
        public static let from = OptionKey<String?>("from", doc: "First day of a range (same forms as `day`).", example: "-7d")
        public static let until = OptionKey<String?>(
            "until", doc: "Last day of the range, inclusive (default: today). (`to` is the key that wires a node, so the end of a range is `until`.)",
            example: "today")
    }

    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }

    /// Today, the window of a node that names none.
    public static let today = DayWindow(from: "today", to: "today")

    /// The window from a node's options: `day`, or `from`/`until` (`until` defaulting to today, `from`
    /// to `until`), or `none` when the node names no day.
    public init(options: NodeOptions, none: DayWindow = .today) {
        if let day = options[Key.day] {
            self.init(from: day, to: day)
        } else if let from = options[Key.from] {
            self.init(from: from, to: options[Key.until] ?? "today")
        } else if let until = options[Key.until] {
            self.init(from: until, to: until)
        } else {
            self = none
        }
    }

    /// The window a message asks for instead, if its payload names one.
    public func overridden(by payload: JSONValue) -> DayWindow {
        if let day = payload["day"]?.stringValue { return DayWindow(from: day, to: day) }
        if let from = payload["from"]?.stringValue {
            return DayWindow(from: from, to: payload["until"]?.stringValue ?? payload["to"]?.stringValue ?? from)
        }
        return self
    }

    public func days(today: LocalDay) throws -> [LocalDay] {
        guard let first = LocalDay.parse(from, today: today) else { throw PermanentError("'\(from)' is not a day (today, tomorrow, -7d or YYYY-MM-DD)") }
        guard let last = LocalDay.parse(to, today: today) else { throw PermanentError("'\(to)' is not a day (today, tomorrow, -7d or YYYY-MM-DD)") }
        guard first <= last else { throw PermanentError("the window starts (\(first)) after it ends (\(last))") }
        var days: [LocalDay] = []
        var day = first
        while day <= last {
            days.append(day)
            day = day.adding(days: 1)
        }
        return days
    }

    /// Option problems of `day`/`from`/`to` for a spec's `check`.
    public static func problems(_ options: NodeOptions) -> [OptionProblem] {
        var problems: [OptionProblem] = []
        for key in [Key.day, Key.from, Key.until] {
            if let text = options[key], !LocalDay.isValid(text) {
                problems.append(OptionProblem(option: key.name, "'\(text)' is not a day: use today, tomorrow, yesterday, -7d, +1d or YYYY-MM-DD"))
            }
        }
        if options.has(Key.day), options.has(Key.from) || options.has(Key.until) {
            problems.append(OptionProblem(option: "day", "give either 'day' or 'from'/'until', not both"))
        }
        return problems
    }
}
