import Foundation

/// How instants arrive in payloads, and how to read them: epoch seconds or milliseconds, ISO-8601
/// with an offset, or a local wall-clock time in a named time zone.
public enum InstantFormat: String, Sendable, CaseIterable, OptionEnumeration {
    /// Numbers are epoch seconds (or milliseconds when above 1e11); text with an offset or `Z` is
    /// ISO-8601; other text is a local time.
    case auto
    case epochSeconds = "epoch_s"
    case epochMilliseconds = "epoch_ms"
    case iso8601
    case local

    /// The instant `value` stands for. Local times are read in `zone`; one that does not exist
    /// there (skipped when clocks went forward) is an error, and one that happens twice (when clocks
    /// went back) is its first occurrence. Instants outside `ReadingLimits.instants` (NaN and
    /// infinities among them) are errors.
    public func instant(_ value: JSONValue, zone: TimeZone) throws -> Date {
        let date = try unchecked(value, zone: zone)
        if let problem = ReadingLimits.problem(instant: date) {
            throw TemplateError("\(value.jsonText()) \(problem)")
        }
        return date
    }

    private func unchecked(_ value: JSONValue, zone: TimeZone) throws -> Date {
        switch (self, value) {
        case (.epochSeconds, .number(let n)), (.auto, .number(let n)) where self == .epochSeconds || n < 1e11:
            return Date(timeIntervalSince1970: n)
        case (.epochMilliseconds, .number(let n)), (.auto, .number(let n)):
            return Date(timeIntervalSince1970: n / 1000)
        case (.epochSeconds, .string(let s)), (.epochMilliseconds, .string(let s)):
            guard let n = Double(s) else { throw TemplateError("'\(s)' is not a number of \(self == .epochSeconds ? "seconds" : "milliseconds")") }
            return try unchecked(.number(n), zone: zone)
        case (.iso8601, .string(let s)):
            guard Self.hasOffset(s), let date = ISO8601.date(s) else {
                throw TemplateError("'\(s)' is not an ISO-8601 instant with an offset (e.g. 2025-03-30T01:00:00+01:00)")
            }
            return date
        case (.local, .string(let s)):
            return try Self.local(s, zone: zone)
        case (.auto, .string(let s)):
            if let n = Double(s) { return try unchecked(.number(n), zone: zone) }
            if Self.hasOffset(s), let date = ISO8601.date(s) { return date }
            return try Self.local(s, zone: zone)
        default:
            throw TemplateError("\(value.jsonText()) is not a time (\(rawValue))")
        }
    }

    /// Whether ISO-8601 text ends in `Z` or a `±hh:mm` offset.
    public static func hasOffset(_ text: String) -> Bool {
        guard let t = text.firstIndex(of: "T") else { return false }
        let time = text[t...]
        return time.hasSuffix("Z") || time.hasSuffix("z") || time.contains("+") || time.dropFirst().contains("-")
    }

    /// `2025-03-30 02:00`, `2025-03-30T02:00:00`, `30/03/2025 02:00`, `2025-03-30` (midnight).
    public static func local(_ text: String, zone: TimeZone) throws -> Date {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let separators = CharacterSet(charactersIn: "-/ T:.")
        let numbers = trimmed.components(separatedBy: separators).filter { !$0.isEmpty }
        guard numbers.count >= 3, numbers.count <= 6, numbers.allSatisfy({ $0.count <= 4 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else {
            throw TemplateError("'\(text)' is not a local time (e.g. 2025-03-30 02:00)")
        }
        var fields = numbers.compactMap { Int($0) }
        if numbers[0].count != 4 {  // day/month/year
            guard numbers[2].count == 4 else { throw TemplateError("'\(text)' is not a local time (e.g. 2025-03-30 02:00)") }
            fields.swapAt(0, 2)
        }
        while fields.count < 6 { fields.append(0) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let wanted = DateComponents(year: fields[0], month: fields[1], day: fields[2], hour: fields[3], minute: fields[4], second: fields[5])
        guard let date = calendar.date(from: wanted) else { throw TemplateError("'\(text)' is not a valid local time") }
        let got = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        guard got.year == wanted.year, got.month == wanted.month, got.day == wanted.day, got.hour == wanted.hour,
            got.minute == wanted.minute, got.second == wanted.second
        else {
            throw TemplateError("'\(text)' does not exist in \(zone.identifier) (clocks went forward, or the date is invalid)")
        }
        // Of a time that happens twice, Foundation may pick either: take the first.
        let earlier = date.addingTimeInterval(-3600)
        if calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: earlier) == got { return earlier }
        return date
    }
}
