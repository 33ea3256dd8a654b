/// Seconds of the ISO-8601 durations readings use (`PT15M`, `PT1H`, `P1D`, `PT0S`); nil for
/// what has no fixed length (`P1M`) or cannot be read.
public enum ISODuration {
    public static func seconds(_ text: String) -> Int? {
        if text.hasPrefix("P"), text.hasSuffix("D"), !text.contains("T"), let n = Int(text.dropFirst().dropLast()) { return n * 86_400 }
        guard text.hasPrefix("PT"), let unit = text.last, let n = Int(text.dropFirst(2).dropLast()) else { return nil }
        switch unit {
        case "H": return n * 3600
        case "M": return n * 60
        case "S": return n
        default: return nil
        }
    }

    /// `PT15M`, `PT1H`, `P1D` for a number of seconds.
    public static func text(seconds: Int) -> String {
        if seconds == 0 { return "PT0S" }
        if seconds % 86_400 == 0 { return "P\(seconds / 86_400)D" }
        if seconds % 3600 == 0 { return "PT\(seconds / 3600)H" }
        if seconds % 60 == 0 { return "PT\(seconds / 60)M" }
        return "PT\(seconds)S"
    }
}
