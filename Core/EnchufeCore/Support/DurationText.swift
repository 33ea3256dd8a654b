/// Durations as flow files write them: `500ms`, `30s`, `15m`, `1h`, `1d`, or combined (`1h30m`).
public enum DurationText {
    public struct Invalid: Error, CustomStringConvertible {
        public var text: String
        public var description: String {
            "'\(text)' is not a duration (write e.g. 500ms, 30s, 15m, 1h or 1d)"
        }
    }

    public static func parse(_ text: String) throws(Invalid) -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw Invalid(text: text) }
        var total = Duration.zero
        var number = ""
        var unit = ""
        func flush() throws(Invalid) {
            guard let n = Int(number), n >= 0 else { throw Invalid(text: text) }
            switch unit {
            case "ms": total += .milliseconds(n)
            case "s": total += .seconds(n)
            case "m": total += .seconds(n * 60)
            case "h": total += .seconds(n * 3600)
            case "d": total += .seconds(n * 86400)
            default: throw Invalid(text: text)
            }
            number = ""
            unit = ""
        }
        for ch in trimmed {
            if ch.isNumber {
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
