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

    public init(
        tenant: String = "", series: String, quantity: String, ts: Date, resolution: String,
        value: Double, unit: String, quality: Quality = .measured, source: String = ""
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
    }

    public var json: JSONValue {
        [
            "tenant": .string(tenant), "series": .string(series), "quantity": .string(quantity),
            "ts": .string(ISO8601.string(ts)), "resolution": .string(resolution), "value": .number(value),
            "unit": .string(unit), "quality": .string(quality.rawValue), "source": .string(source),
        ]
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
            source: json["source"]?.stringValue ?? "")
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
public enum ISO8601 {
    public static func string(_ date: Date) -> String {
        let ms = (date.timeIntervalSince1970 * 1000).rounded()
        if ms.truncatingRemainder(dividingBy: 1000) == 0 {
            return date.formatted(.iso8601)
        }
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    public static func date(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: .iso8601) { return d }
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
            return d
        }
        // A date alone means its midnight UTC.
        return try? Date(text, strategy: .iso8601.year().month().day())
    }
}
