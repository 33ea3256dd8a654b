import Foundation

/// The bounds of what the hub takes as a reading, wherever it comes from (a webhook, a dropped
/// file, an MQTT payload, a Lua script, a plugin). A reading outside them is the sender's error —
/// a 400, a dead letter, a file moved to `failed/` — never a trap in a conversion and never a row
/// that the exports would print wrongly (dates before 1582 fall in the Julian calendar, years past
/// 9999 have no ISO-8601 text, a NaN has no JSON).
public enum ReadingLimits {
    /// Instants from 1970-01-01T00:00:00Z up to, not including, 2100-01-01T00:00:00Z.
    public static let instants = Date(timeIntervalSince1970: 0)..<Date(timeIntervalSince1970: 4_102_444_800)
    /// The text of `instants` for messages.
    public static let instantsText = "1970-01-01T00:00:00Z to 2099-12-31T23:59:59Z"
    /// Bytes of a series name (a CUPS is 20–22; `ree:1001:8741`, `device:inv-07`).
    public static let seriesBytes = 256
    /// Bytes of a quantity, unit, resolution or tenant.
    public static let nameBytes = 64

    /// Why `date` cannot be a reading's time, or nil when it can.
    public static func problem(instant date: Date) -> String? {
        instants.contains(date) ? nil : "is outside \(instantsText)"
    }

    /// Why `text` cannot name a series (or, with `bytes`, a quantity or unit), or nil when it can.
    static func problem(name text: String, bytes: Int, empty: Bool = false) -> String? {
        if text.isEmpty && !empty { return "is empty" }
        if text.utf8.count > bytes { return "is longer than \(bytes) bytes" }
        // C0 controls and DEL are single bytes in UTF-8, and no byte of a longer sequence is below 0x80.
        func control(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }
        if text.utf8.withContiguousStorageIfAvailable({ $0.contains(where: control) }) ?? text.utf8.contains(where: control) {
            return "contains a control character"
        }
        return nil
    }
}

extension Reading {
    /// Why this reading cannot be stored (the field and what is wrong with it), or nil when it can.
    public var problem: String? {
        func named(_ field: String, _ what: String?) -> String? { what.map { "\(field) \($0)" } }
        return named("ts", ReadingLimits.problem(instant: ts))
            ?? (value.isFinite ? nil : "value \(value) is not a finite number")
            ?? named("series", ReadingLimits.problem(name: series, bytes: ReadingLimits.seriesBytes))
            ?? named("quantity", ReadingLimits.problem(name: quantity, bytes: ReadingLimits.nameBytes))
            ?? named("unit", ReadingLimits.problem(name: unit, bytes: ReadingLimits.nameBytes, empty: true))
            ?? named("resolution", ReadingLimits.problem(name: resolution, bytes: ReadingLimits.nameBytes))
            ?? named("tenant", ReadingLimits.problem(name: tenant, bytes: ReadingLimits.nameBytes, empty: true))
    }
}

extension [Reading] {
    /// Throws a `PermanentError` naming the first reading that cannot be stored (`Reading.problem`):
    /// the stores check every batch before writing any of it. On an array, not any sequence: the
    /// stores call it from other modules, where a generic one ran unspecialized (its metadata
    /// lookups were most of its cost).
    public func checkStorable() throws {
        for (i, reading) in enumerated() {
            if let why = reading.problem {
                throw PermanentError("reading \(i + 1) (\(reading.series.prefix(64)) \(reading.quantity.prefix(32))) cannot be stored: \(why)")
            }
        }
    }
}

extension Date {
    /// Milliseconds since 1970, saturating instead of trapping for instants no store should see.
    public var epochMilliseconds: Int64 {
        let ms = (timeIntervalSince1970 * 1000).rounded()
        if ms.isNaN { return 0 }
        if ms >= 9.2e18 { return .max }
        if ms <= -9.2e18 { return .min }
        return Int64(ms)
    }
}
