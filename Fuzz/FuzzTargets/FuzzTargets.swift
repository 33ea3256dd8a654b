import AEMET
import Datadis
@testable import EnchufeCore
import Foundation
import Logging
@testable import MQTT
import REData

/// What the fuzzer feeds data from outside into: every body reader, the flow loader, MQTT payload
/// mapping, the pull connectors' answer parsers, the HMAC header parser. Each target takes any
/// bytes; a thrown error is a fine answer (the input was bad), a trap or a sanitizer report is a
/// finding. `scripts/fuzz` runs them under libFuzzer; `FuzzRegressionTests` runs every saved input
/// (seeds and past findings) through the same functions in the ordinary test build.
public enum FuzzTargets {
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "json": json,
        "body": body,
        "flow": flow,
        "mqtt": mqtt,
        "answers": answers,
        "hmac": hmac,
        "instant": instant,
    ]

    /// JSON text: read, written back, read again to the same value.
    static func json(_ data: [UInt8]) {
        guard let value = try? JSONReader.parse(data) else { return }
        let again = try? JSONReader.parse(value.jsonText())
        precondition(again == value, "a value read from JSON does not read back the same")
    }

    static let readers: [BodyReader] = {
        let mapping: JSONValue = ["series": "{payload.cups}", "quantity": "consumption", "ts": "{payload.ts}", "value": "{payload.kwh}", "unit": "kWh"]
        return BodyReader.formats.compactMap { format in
            try? BodyReader(NodeOptions(values: ["format": .string(format), "readings": mapping, "max_rows": 5000]))
        }
    }()

    /// A webhook or dropped file's body, in each format (the first byte picks it), mapped to readings.
    static func body(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let reader = readers[Int(first) % readers.count]
        let types = ["application/json", "application/x-ndjson", "text/csv", "text/plain", nil]
        let messages = try? reader.messages(
            Array(data.dropFirst()), contentType: types[Int(first / 16) % types.count], receivedAt: Date(timeIntervalSince1970: 1_780_000_000),
            attributes: [:])
        for reading in messages?.flatMap(\.readings) ?? [] {
            precondition(reading.problem == nil, "a reader made a reading the store cannot hold: \(reading.problem!)")
        }
    }

    static let registry = NodeRegistry(CoreNodes.specs + MQTTModule.specs)

    /// A flow file: YAML, substitutions, node options, Lua syntax checks.
    static func flow(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        _ = FlowLoader(registry: registry, environment: ["HOME": "/tmp", "X": "1"]).load(text: text, file: "fuzz.yaml")
    }

    static let mqttNodes: [MQTTInNode] = ["json", "number", "text", "raw"].compactMap { format in
        let readings: JSONValue = ["series": "device:{topic.2}", "quantity": "power", "value": "=msg.payload.w / 1000", "ts": "{payload.ts}", "unit": "kW"]
        let options = NodeOptions(values: ["topics": ["site/+/power"], "format": .string(format), "readings": format == "json" ? readings : .null])
        let context = NodeBuildContext(
            flow: "fuzz", node: "mqtt", tenant: "t", options: options, logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }),
            metrics: HubMetrics())
        return try? MQTTInNode(context, connection: NodeOptions(values: ["port": 1883]))
    }

    /// An MQTT message (topic length, topic, payload) in each payload format, through the mapping.
    static func mqtt(_ data: [UInt8]) {
        guard data.count >= 2 else { return }
        let node = mqttNodes[Int(data[0]) % mqttNodes.count]
        let topicLength = min(Int(data[1]), data.count - 2)
        let topic = String(decoding: data[2..<(2 + topicLength)], as: UTF8.self)
        let message = try? node.message(MQTTMessage(topic: topic, payload: Array(data[(2 + topicLength)...]), qos: 1), receivedAt: Date(timeIntervalSince1970: 1_780_000_000))
        for reading in message?.readings ?? [] {
            precondition(reading.problem == nil, "the mapping made a reading the store cannot hold: \(reading.problem!)")
        }
    }

    /// An answer of REData, ESIOS, AEMET or Datadis (the first byte picks the parser).
    static func answers(_ data: [UInt8]) {
        guard let first = data.first, let json = try? JSONReader.parse(Array(data.dropFirst())) else { return }
        let aemet = AEMETReadings()
        let records = json.arrayValue ?? [json]
        switch first % 9 {
        case 0: _ = try? REDataAnswer.readings(json)
        case 1: _ = try? ESIOSAnswer.readings(json)
        case 2: _ = try? aemet.observations(records)
        case 3: _ = try? aemet.climatology(records)
        case 4: _ = try? aemet.hourlyForecast(records)
        case 5: _ = try? aemet.dailyForecast(records)
        case 6:
            if let rows = try? DatadisAnswer.rows(json, key: "timeCurve").rows {
                _ = DatadisCurve.readings(rows, series: "ES0021000000000001AA", quarterHourly: first & 16 != 0)
                _ = DatadisCurve.maxPower(rows, series: "ES0021000000000001AA")
            }
        case 7:
            if let rows = try? DatadisAnswer.rows(json, key: "supplies").rows { _ = try? DatadisAnswer.supplies(rows, tenant: "t") }
        default:
            if let rows = try? DatadisAnswer.rows(json, key: "contract").rows {
                _ = DatadisAnswer.contract(rows, into: SupplyPoint(tenant: "t", cups: "ES0021000000000001AA"))
            }
        }
    }

    /// The `X-Enchufe-Signature` header.
    static func hmac(_ data: [UInt8]) {
        let header = String(decoding: data, as: UTF8.self)
        _ = try? WebhookSignature.fields(header)
        _ = try? WebhookSignature(header, body: data, secret: Secret("fuzz-secret-0123456789"), now: Date(timeIntervalSince1970: 1_780_000_000))
    }

    /// Instants in every format, and query dates.
    static func instant(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        let zone = LocalDay.madrid
        for format in InstantFormat.allCases {
            for value: JSONValue in [.string(text), .number(Double(text) ?? 0)] {
                if let date = try? format.instant(value, zone: zone) {
                    precondition(ReadingLimits.instants.contains(date), "\(format) read an instant outside the range")
                    _ = ISO8601.string(date)
                }
            }
        }
        if let date = ISO8601.date(text) { precondition(ReadingLimits.instants.contains(date)) }
        _ = LocalDay(text).map { $0.start(in: zone) }
    }
}
