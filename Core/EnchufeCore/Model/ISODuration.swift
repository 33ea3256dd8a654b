/// Seconds of the ISO-8601 durations readings use (`PT15M`, `PT1H`, `P1D`, `PT0S`); nil for
/// what has no fixed length (`P1M`) or cannot be read.
public enum ISODuration {
    public static func seconds(_ text: String) -> Int? {
        let count: Substring
        let unit: Int
        if text.hasPrefix("P"), text.hasSuffix("D"), !text.contains("T") {
            (count, unit) = (text.dropFirst().dropLast(), 86_400)
        } else {
            guard text.hasPrefix("PT"), let last = text.last else { return nil }
            switch last {
            case "H": unit = 3600
            case "M": unit = 60
            case "S": unit = 1
            default: return nil
            }
            count = text.dropFirst(2).dropLast()
        }
        // Digits only (no sign), and no longer than `longest`: a reading's resolution comes from
        // outside, and `P99999999999999999D` must be unreadable, not an overflow.
        guard !count.isEmpty, count.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(count) else { return nil }
        let (seconds, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow || seconds > longest ? nil : seconds
    }

    /// The longest duration read, in seconds: `DurationText.longest` (100 years).
    public static let longest = Int(DurationText.longest.components.seconds)

    /// `PT15M`, `PT1H`, `P1D` for a number of seconds.
    public static func text(seconds: Int) -> String {
        if seconds == 0 { return "PT0S" }
        if seconds % 86_400 == 0 { return "P\(seconds / 86_400)D" }
        if seconds % 3600 == 0 { return "PT\(seconds / 3600)H" }
        if seconds % 60 == 0 { return "PT\(seconds / 60)M" }
        return "PT\(seconds)S"
    }
}
