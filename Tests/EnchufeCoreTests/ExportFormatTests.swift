import Foundation
import Testing

@testable import EnchufeCore

@Suite struct ExportFormatTests {
    /// Every hour of `day` in Madrid for two supplies: consumption, and surplus in daylight, in whole
    /// Wh (what the 5D files carry); one supply's evening estimated.
    static func dayOfReadings(_ day: LocalDay) -> [Reading] {
        var readings: [Reading] = []
        for (n, cups) in ["ES0031000000000001BJ0F", "ES0031000000000002AB0F"].enumerated() {
            var hour = day.start(in: LocalDay.madrid)
            var k = 0
            while hour < day.end(in: LocalDay.madrid) {
                let quality: Quality = n == 1 && k >= 20 ? .estimated : .measured
                readings.append(Reading(series: cups, quantity: "consumption", ts: hour, resolution: "PT1H", value: Double(137 + 13 * k + n) / 1000, unit: "kWh", quality: quality))
                if (9...16).contains(k) {
                    readings.append(Reading(series: cups, quantity: "surplus", ts: hour, resolution: "PT1H", value: Double(400 + 7 * k) / 1000, unit: "kWh", quality: quality))
                }
                hour = hour.addingTimeInterval(3600)
                k += 1
            }
        }
        return readings
    }

    /// The export of `readings` in `format`, read back by the parser `webhook.in` and `file.in` use
    /// (format `auto`: recognised by its first line, as a dropped file would be).
    static func roundTrip(_ readings: [Reading], _ format: ExportFormat) throws -> (text: String, back: [Reading]) {
        let writer = ExportWriter(format)
        var text = writer.start()
        for cups in Set(readings.map(\.series)).sorted() {
            text += writer.curveRows(cups: cups, readings.filter { $0.series == cups })
        }
        text += writer.end()
        let reader = try BodyReader(NodeOptions(values: ["format": "auto"]))
        let messages = try reader.messages(Array(text.utf8), contentType: "text/csv", receivedAt: Date(), attributes: [:])
        return (text, messages.flatMap(\.readings))
    }

    static func key(_ r: Reading) -> String { "\(r.series) \(r.quantity) \(ISO8601.string(r.ts)) \(r.value) \(r.quality.rawValue) \(r.resolution) \(r.unit)" }

    @Test(arguments: ["2026-06-10", "2026-03-29", "2026-10-25"], [ExportFormat.datadisCSV, .f5d])
    func aDayExportedAsACurveIsReadBackIntoTheSameReadings(_ day: String, _ format: ExportFormat) throws {
        let readings = Self.dayOfReadings(LocalDay(day)!)
        let (text, back) = try Self.roundTrip(readings, format)
        #expect(back.map(Self.key).sorted() == readings.map(Self.key).sorted(), "\(text)")
        let hours = day == "2026-03-29" ? 23 : day == "2026-10-25" ? 25 : 24
        #expect(text.split(whereSeparator: \.isNewline).count == 2 * hours + (format == .datadisCSV ? 1 : 0))
    }

    @Test func theCurveFormatsWriteWhatTheUtilitiesWrite() throws {
        let readings = Self.dayOfReadings(LocalDay("2026-10-25")!).filter { $0.series == "ES0031000000000001BJ0F" }
        let f5d = ExportWriter(.f5d).curveRows(cups: "ES0031000000000001BJ0F", readings).split(separator: "\n").map(String.init)
        // Labels are the local start + 1 h; the repeated October hour is 03:00 twice, summer then winter.
        #expect(f5d[0] == "ES0031000000000001BJ0F;2026/10/25 01:00;1;137;;;;;;1;1;;")
        #expect(f5d[2].hasPrefix("ES0031000000000001BJ0F;2026/10/25 03:00;1;163;"))
        #expect(f5d[3].hasPrefix("ES0031000000000001BJ0F;2026/10/25 03:00;0;176;"))
        #expect(f5d[24].hasPrefix("ES0031000000000001BJ0F;2026/10/26 00:00;0;"))
        let csv = ExportWriter(.datadisCSV).curveRows(cups: "ES0031000000000001BJ0F", readings).split(separator: "\n").map(String.init)
        #expect(csv[0] == #""ES0031000000000001BJ0F";"2026/10/25";"01:00";"0,137";"Real";"";"";"""#)
        #expect(csv[9] == #""ES0031000000000001BJ0F";"2026/10/25";"09:00";"0,254";"Real";"0,463";"";"""#)
        #expect(csv[24].contains(#""24:00""#))
    }

    @Test func tableFormatsStreamPageByPage() throws {
        let stored = Self.dayOfReadings(LocalDay("2026-06-10")!).enumerated().map { StoredReading(reading: $0.element, revision: 1, seq: Int64($0.offset + 1)) }
        for format in [ExportFormat.csv, .json, .ndjson] {
            var writer = ExportWriter(format)
            var text = writer.start()
            text += writer.rows(Array(stored[..<10]))
            text += writer.rows(Array(stored[10...]))
            text += writer.end()
            switch format {
            case .json:
                let back = try JSONValue.parse(text)["readings"]?.arrayValue ?? []
                #expect(back.compactMap(Reading.init(json:)) == stored.map(\.reading))
                #expect(back.last?["seq"]?.intValue == stored.count)
            case .ndjson:
                #expect(try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }.compactMap(Reading.init(json:)) == stored.map(\.reading))
            default:
                let lines = text.split(separator: "\n")
                #expect(lines.count == stored.count + 1)
                #expect(lines[1] == "ES0031000000000001BJ0F,consumption,2026-06-09T22:00:00Z,PT1H,0.137,kWh,measured,1,1")
            }
        }
    }

    @Test func curvesOfQuarterHoursAreHourlySumsAndAnHourWithQuartersMissingIsEstimated() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let start = ISO8601.date("2026-06-10T08:00:00Z")!
        // 10:00–11:00 Madrid whole (4 quarters), 11:00–12:00 with its last quarter missing.
        let quarters = (0..<7).map { k in
            Reading(tenant: "t", series: "ES0031000000000001BJ0F", quantity: "consumption", ts: start.addingTimeInterval(Double(900 * k)), resolution: "PT15M", value: Double(100 + k) / 1000, unit: "kWh")
        }
        _ = try await store.upsert(quarters)
        var text = ""
        try await Exporter.write(.f5d, ReadingQuery(tenant: "t"), store: store) { chunk in text += String(buffer: chunk) }
        let rows = text.split(separator: "\n").map(String.init)
        #expect(rows == [
            "ES0031000000000001BJ0F;2026/06/10 11:00;1;406;;;;;;1;1;;",
            "ES0031000000000001BJ0F;2026/06/10 12:00;1;315;;;;;;5;0;;",
        ])
    }
}
