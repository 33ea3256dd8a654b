@testable import EnchufeCore
import Foundation
import Testing

/// The Spanish curve files (synthetic samples in `Curves/`, copied from the shared fixtures).
@Suite struct CurveFileTests {
    static func text(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Curves/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    static func utc(_ text: String) -> Date { ISO8601.date(text)! }

    static func sum(_ readings: [Reading], _ quantity: String = "consumption") -> Double {
        readings.filter { $0.quantity == quantity }.map(\.value).reduce(0, +)
    }

    @Test func theDistributorCSVHas25HoursOnTheOctoberDay() throws {
        let text = try Self.text("cch_cons_distribuidora.csv")
        #expect(CurveFiles.looksLabelled(text) && !CurveFiles.looksLike5D(text))
        let readings = try CurveFiles.labelledCSV(text)
        #expect(readings.count == 49 && readings.allSatisfy { $0.series == "ES0031000000000001BJ0F" && $0.unit == "kWh" && $0.resolution == "PT1H" })
        let byTime = Dictionary(uniqueKeysWithValues: readings.map { ($0.ts, $0.value) })
        // 26/10 hour 1 ends at 01:00 CEST: 22:00 UTC the day before.
        #expect(byTime[Self.utc("2024-10-25T22:00:00Z")] == 0.432)
        // 27/10: 25 hours from 22:00 UTC on the 26th; hour 3 is 02:00-03:00 CEST, hour 4 the repeated 02:00-03:00 CET.
        #expect(byTime[Self.utc("2024-10-26T22:00:00Z")] == 0.265)
        #expect(byTime[Self.utc("2024-10-27T00:00:00Z")] == 0.094)
        #expect(byTime[Self.utc("2024-10-27T01:00:00Z")] == 0.297)
        #expect(byTime[Self.utc("2024-10-27T22:00:00Z")] == 0.574, "hour 25 is 23:00-24:00 CET")
        let day = readings.filter { $0.ts >= Self.utc("2024-10-26T22:00:00Z") }
        let rows = text.split(whereSeparator: \.isNewline).filter { $0.contains("27/10/2024") }.compactMap { Double($0.split(separator: ";")[3].replacingOccurrences(of: ",", with: ".")) }
        #expect(day.count == 25 && abs(Self.sum(day) - rows.reduce(0, +)) < 1e-9, "the day's total is the sum of its rows")
    }

    @Test func theDatadisWebExportAndTheEDistribucionPortal() throws {
        let datadis = try CurveFiles.labelledCSV(Self.text("datadis_web_hourly.csv"))
        let consumption = datadis.filter { $0.quantity == "consumption" }
        #expect(consumption.count == 24 && datadis.filter { $0.quantity == "surplus" }.count == 24)
        #expect(consumption.first { $0.ts == Self.utc("2024-06-02T23:00:00Z") }?.value == 0.335, "02:00 ends 01:00-02:00 CEST")
        #expect(consumption.first { $0.ts == Self.utc("2024-06-03T21:00:00Z") }?.value == 0.229)

        let portal = try CurveFiles.labelledCSV(Self.text("edistribucion_portal_autoconsumo.csv"))
        #expect(portal.first { $0.quantity == "consumption" && $0.ts == Self.utc("2024-06-02T22:00:00Z") }?.value == 0.392)
        #expect(Set(portal.map(\.quantity)) == ["consumption", "surplus", "self_consumption"])
    }

    @Test func fiveDFilesUseTheSeasonFlagForTheRepeatedHour() throws {
        let autumn = try CurveFiles.f5d(Self.text("P5D_0031_0762_20241028.0"))
        #expect(autumn.count == 50 && Set(autumn.filter { $0.quantity == "consumption" }.map(\.ts)).count == 25)
        let at = { (ts: String) in autumn.first { $0.quantity == "consumption" && $0.ts == Self.utc(ts) }?.value }
        #expect(at("2024-10-26T22:00:00Z") == 0.285, "01:00 season 1: 00:00-01:00 CEST, Wh to kWh")
        #expect(at("2024-10-27T00:00:00Z") == 0.322, "03:00 season 1: 02:00-03:00 CEST")
        #expect(at("2024-10-27T01:00:00Z") == 0.144, "03:00 season 0: 02:00-03:00 CET")
        #expect(at("2024-10-27T22:00:00Z") == 0.183, "28/10 00:00: the last hour of the 27th")

        let spring = try CurveFiles.f5d(Self.text("P5D_0031_0762_20240401.0"))
        let times = spring.filter { $0.quantity == "consumption" }.map(\.ts).sorted()
        #expect(times.count == 23 && times[1] == Self.utc("2024-03-31T00:00:00Z") && times[2] == Self.utc("2024-03-31T01:00:00Z"))

        let billed = try CurveFiles.f5d(Self.text("F5D_0031_0762_20240503.0"))
        #expect(CurveFiles.looksLike5D(try Self.text("F5D_0031_0762_20240503.0")))
        #expect(billed.first { $0.quantity == "consumption" && $0.ts == Self.utc("2024-04-14T22:00:00Z") }?.value == 0.152)
        #expect(billed.allSatisfy { $0.quality == .measured }, "method 1: real")
    }

    @Test func aBadLineIsNamedAndNothingIsRead() {
        #expect { try CurveFiles.labelledCSV("CUPS;Fecha;Hora;Consumo_kWh;Metodo_obtencion\nES1;01/06/2024;1;0,5;R\nES1;01/06/2024;x;0,5;R\n") } throws: {
            ($0 as? CurveFileError)?.line == 3
        }
        #expect { try CurveFiles.labelledCSV("CUPS;Fecha;Hora;Consumo_kWh\nES1;01/06/2024;1;0,5\nES1;01/06/2024;1;0,6\n") } throws: {
            ($0 as? CurveFileError)?.description.contains("appears twice") == true
        }
        #expect { try CurveFiles.labelledCSV("CUPS;Fecha;Hora;Consumo_kWh\nES1;01/06/2024;25;0,5\n") } throws: {
            ($0 as? CurveFileError)?.description.contains("does not exist") == true
        }
        #expect { try CurveFiles.f5d("ES1;2024/10/27 03:00;2;100;0;\n") } throws: { ($0 as? CurveFileError)?.line == 1 }
        #expect(throws: Never.self) { try CurveFiles.labelledCSV("\u{FEFF}CUPS;Fecha;Hora;Consumo_kWh\r\nES1;01/06/2024;1;1.5\r\n") }
    }
}
