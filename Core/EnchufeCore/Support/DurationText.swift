/// Durations as flow files write them: `500ms`, `30s`, `15m`, `1h`, `1d`, or combined (`1h30m`).
public enum DurationText {
    /// The longest duration a flow may write: 100 years (36500d). Past it nothing a hub waits for
    /// or keeps makes sense, and a bound keeps every sum and conversion (to nanoseconds in an
    /// `Int64`, which ends near 292 years) inside its type.
    public static let longest = Duration.seconds(36_500 * 86_400)

    public struct Invalid: Error, CustomStringConvertible {
        public var text: String
        public var tooLong = false
        public var description: String {
            tooLong
                ? "'\(text)' is longer than the longest duration a flow may write (\(DurationText.format(DurationText.longest)), 100 years)"
                : "'\(text)' is not a duration (write e.g. 500ms, 30s, 15m, 1h or 1d)"
        }
    }

    public static func parse(_ text: String) throws(Invalid) -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw Invalid(text: text) }
        var total = Duration.zero
        var number = ""
        var unit = ""
        func flush() throws(Invalid) {
            // `number` holds one or more ASCII digits here; too many for an Int is far past the longest.
            guard let n = Int(number) else { throw Invalid(text: text, tooLong: true) }
            let millisecondsPerUnit: Int
            switch unit {
            case "ms": millisecondsPerUnit = 1
            case "s": millisecondsPerUnit = 1000
            case "m": millisecondsPerUnit = 60_000
            case "h": millisecondsPerUnit = 3_600_000
            case "d": millisecondsPerUnit = 86_400_000
            default: throw Invalid(text: text)
            }
            let (milliseconds, overflow) = n.multipliedReportingOverflow(by: millisecondsPerUnit)
            guard !overflow, .milliseconds(milliseconds) <= longest - total else {
                throw Invalid(text: text, tooLong: true)
            }
            total += .milliseconds(milliseconds)
            number = ""
            unit = ""
        }
        for ch in trimmed {
            if ch.isASCII, ch.isNumber {
                if !unit.isEmpty { try flush() }
                number.append(ch)
            } else if ch.isLetter {
                guard !number.isEmpty else { throw Invalid(text: text) }
                unit.append(ch)
            } else {
                throw Invalid(text: text)
            }
        }
        try flush()
        return total
    }

    public static func format(_ d: Duration) -> String {
        let ms = d.milliseconds
        if ms % 86_400_000 == 0, ms > 0 { return "\(ms / 86_400_000)d" }
        if ms % 3_600_000 == 0, ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0, ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Duration {
    public var milliseconds: Int64 {
        let (s, a) = components
        return s * 1000 + a / 1_000_000_000_000_000
    }

    public var nanosecondsTotal: Int64 {
        let (s, a) = components
        return s * 1_000_000_000 + a / 1_000_000_000
    }

    public var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}

import Foundation
