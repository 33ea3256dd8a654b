import Foundation

/// How much a value can be trusted. A value of lower rank never replaces a stored value of higher rank:
/// an `estimated` or `forecast` value never overwrites a `measured` one.
public enum Quality: String, Sendable, Codable, CaseIterable {
    case measured, estimated, forecast, computed

    /// measured and computed (derived from measured data) rank highest, forecasts lowest.
    public var rank: Int {
        switch self {
        case .measured, .computed: return 3
        case .estimated: return 2
        case .forecast: return 1
        }
    }
}

/// The canonical record that connectors emit and sinks store (SPEC §5).
public struct Reading: Sendable, Hashable, Codable {
    /// The community or customer that owns it; empty means "the flow's tenant".
    public var tenant: String
    /// What was measured: a CUPS, `ree:1001:8741`, `device:inv-07`, ...
    public var series: String
    public var quantity: String
    /// Start of the interval, UTC.
    public var ts: Date
    /// ISO-8601 duration: `PT15M`, `PT1H`, `P1D`, `PT0S` for instantaneous values.
    public var resolution: String
    public var value: Double
    public var unit: String
    public var quality: Quality
    /// The flow and node that produced it (`flow/node`); empty means "the emitting node".
    public var source: String
    /// What transforms found out about it on the way (`period: P1` from `tariff.periods`). Tags
    /// travel with the messages and show in exports; the store keeps the canonical fields only.
    public var tags: [String: String]

    public init(
        tenant: String = "", series: String, quantity: String, ts: Date, resolution: String,
        value: Double, unit: String, quality: Quality = .measured, source: String = "", tags: [String: String] = [:]
    ) {
        self.tenant = tenant
        self.series = series
        self.quantity = quantity
        self.ts = ts
        self.resolution = resolution
        self.value = value
        self.unit = unit
        self.quality = quality
        self.source = source
        self.tags = tags
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "tenant": .string(tenant), "series": .string(series), "quantity": .string(quantity),
            "ts": .string(ISO8601.string(ts)), "resolution": .string(resolution), "value": .number(value),
            "unit": .string(unit), "quality": .string(quality.rawValue), "source": .string(source),
        ]
        if !tags.isEmpty { o["tags"] = .object(tags.mapValues(JSONValue.string)) }
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard let series = json["series"]?.stringValue, let quantity = json["quantity"]?.stringValue,
            let tsText = json["ts"]?.stringValue, let ts = ISO8601.date(tsText),
            let value = json["value"]?.doubleValue
        else { return nil }
        self.init(
            tenant: json["tenant"]?.stringValue ?? "", series: series, quantity: quantity, ts: ts,
            resolution: json["resolution"]?.stringValue ?? "PT0S", value: value,
            unit: json["unit"]?.stringValue ?? "",
            quality: json["quality"]?.stringValue.flatMap(Quality.init(rawValue:)) ?? .measured,
            source: json["source"]?.stringValue ?? "",
            tags: json["tags"]?.objectValue?.compactMapValues(\.stringValue) ?? [:])
    }
}

/// A reading as the store holds it: with its revision and its place in the change sequence.
public struct StoredReading: Sendable, Hashable {
    public var reading: Reading
    public var revision: Int
    public var seq: Int64

    public init(reading: Reading, revision: Int, seq: Int64) {
        self.reading = reading
        self.revision = revision
        self.seq = seq
    }
}

/// ISO-8601 instants in UTC, with or without fractional seconds.
extension Sequence<Reading> {
    /// The resolution most of the readings have, in seconds (nil: none with a duration).
    public var commonResolutionSeconds: Int? {
        let counts = Dictionary(grouping: compactMap { ISODuration.seconds($0.resolution) }.filter { $0 > 0 }, by: { $0 })
        return counts.max { ($0.value.count, $1.key) < ($1.value.count, $0.key) }?.key
    }
}

extension Reading {
    /// Where the reading's interval ends (its start, for an instant or a resolution that is not an ISO-8601 duration).
    public var end: Date { ts.addingTimeInterval(Double(ISODuration.seconds(resolution) ?? 0)) }
}

public enum ISO8601 {
    public static func string(_ date: Date) -> String {
        let ms = (date.timeIntervalSince1970 * 1000).rounded()
        // Only an instant nobody should have let in gets here; it must not trap on its way out.
        guard ms.isFinite, abs(ms) < 2.5e17 else { return "\(date.timeIntervalSince1970)s-since-1970" }
        // By hand: Foundation's formatter took microseconds, paid for every MQTT message's arrival time.
        let whole = Int64(ms)
        let seconds = whole >= 0 ? whole / 1000 : (whole - 999) / 1000
        let millis = Int(whole - seconds * 1000)
        if let text = wholeSeconds(seconds, millis: millis == 0 ? nil : millis) { return text }
        return millis == 0 ? date.formatted(.iso8601) : date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// The instant of ISO-8601 text (`Z` or an offset of at most ±18:00; a date alone is its midnight
    /// UTC), or nil for other text and for instants outside `ReadingLimits.instants`.
    public static func date(_ text: String) -> Date? {
        guard let date = anyDate(text), ReadingLimits.instants.contains(date) else { return nil }
        return date
    }

    private static func anyDate(_ text: String) -> Date? {
        if let d = wholeSeconds(text) { return d }
        guard text.utf8.count <= 40, validOffset(text) else { return nil }
        if let d = try? Date(text, strategy: .iso8601) { return d }
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
            return d
        }
        // A date alone means its midnight UTC.
        return try? Date(text, strategy: .iso8601.year().month().day())
    }

    /// Whether the offset that ends the text, if any (`+01:00`, `-0530`), is one a clock can have.
    private static func validOffset(_ text: String) -> Bool {
        guard let t = text.firstIndex(where: { $0 == "T" || $0 == "t" }) else { return true }
        let time = text[text.index(after: t)...]
        guard let sign = time.lastIndex(where: { $0 == "+" || $0 == "-" }) else { return true }
        let digits = time[time.index(after: sign)...].filter { $0 != ":" }
        guard digits.count == 4 || digits.count == 2, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let hours = Int(digits.prefix(2)), let minutes = Int(digits.dropFirst(2).isEmpty ? "0" : String(digits.dropFirst(2)))
        else { return false }
        return hours <= 18 && minutes < 60
    }

    // Readings carry whole-second UTC instants by the million; Foundation's formatter costs
    // microseconds each, so that one form is written and read here (days from civil, H. Hinnant).

    /// `YYYY-MM-DDTHH:MM:SSZ` for years 1900...9999 (earlier ones are Foundation's: it switches to
    /// the Julian calendar before 1582).
    /// `YYYY-MM-DDTHH:MM:SSZ`, or with `millis` `YYYY-MM-DDTHH:MM:SS.mmmZ`, for years 1900–9999.
    static func wholeSeconds(_ seconds: Int64, millis: Int? = nil) -> String? {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = Int(seconds - days * 86400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0))
        guard (1900...9999).contains(year) else { return nil }
        var bytes = [UInt8](repeating: 0, count: millis == nil ? 20 : 24)
        func put(_ value: Int, _ at: Int, _ width: Int) {
            var v = value
            for i in stride(from: at + width - 1, through: at, by: -1) {
                bytes[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        put(year, 0, 4)
        bytes[4] = 45
        put(month, 5, 2)
        bytes[7] = 45
        put(day, 8, 2)
        bytes[10] = 84
        put(secondOfDay / 3600, 11, 2)
        bytes[13] = 58
        put(secondOfDay / 60 % 60, 14, 2)
        bytes[16] = 58
        put(secondOfDay % 60, 17, 2)
        if let millis {
            bytes[19] = 46
            put(millis, 20, 3)
        }
        bytes[bytes.count - 1] = 90
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The instant of `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS.mmmZ`, or nil for any other form.
    static func wholeSeconds(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { b -> Date? in
            guard b.count == 20 || b.count == 24, b[4] == 45, b[7] == 45, b[10] == 84, b[13] == 58, b[16] == 58, b[b.count - 1] == 90,
                b.count == 20 ? b[19] == 90 : b[19] == 46
            else { return nil }
            func number(_ at: Int, _ width: Int) -> Int? {
                var v = 0
                for i in at..<(at + width) {
                    guard b[i] >= 48, b[i] <= 57 else { return nil }
                    v = v * 10 + Int(b[i] - 48)
                }
                return v
            }
            guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
                let minute = number(14, 2), let second = number(17, 2), (1...12).contains(month), hour < 24, minute < 60,
                second < 60
            else { return nil }
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            guard year >= 1900, (1...monthDays[month - 1]).contains(day) else { return nil }
            let y = Int64(month <= 2 ? year - 1 : year)
            let era = (y >= 0 ? y : y - 399) / 400
            let yearOfEra = y - era * 400
            let mp = Int64(month > 2 ? month - 3 : month + 9)
            let dayOfYear = (153 * mp + 2) / 5 + Int64(day) - 1
            let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
            let days = era * 146_097 + dayOfEra - 719_468
            let whole = days * 86400 + Int64(hour * 3600 + minute * 60 + second)
            guard b.count == 24 else { return Date(timeIntervalSince1970: Double(whole)) }
            guard let millis = number(20, 3) else { return nil }
            return Date(timeIntervalSince1970: Double(whole * 1000 + Int64(millis)) / 1000)
        }
    }
}
