@testable import AEMET
import EnchufeCore
import Foundation
import HTTPPull
import Testing

/// The recorded AEMET answers in Fixtures/ (copied from ../shared/fixtures/aemet).
enum Fixtures {
    static func text(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "json"))
        return String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }

    static func array(_ name: String) throws -> [JSONValue] {
        try #require(try JSONValue.parse(text(name)).arrayValue)
    }

    static func utc(_ text: String) -> Date { ISO8601.date(text)! }
}

extension [Reading] {
    func one(_ quantity: String, at ts: String) -> Reading? {
        let matching = filter { $0.quantity == quantity && $0.ts == Fixtures.utc(ts) }
        return matching.count == 1 ? matching[0] : nil
    }
}

@Suite struct AEMETAnswerTests {
    let parse = AEMETReadings(traceMM: 0.05)

    @Test func valuesAreReadLeniently() {
        #expect(AEMETValue(.string("13,6")) == .number(13.6))
        #expect(AEMETValue(.string("-0")) == .number(0))
        #expect(AEMETValue(.number(2)) == .number(2))
        #expect(AEMETValue(.string("Ip")) == .trace)
        #expect(AEMETValue(.string("Acum")) == .accumulated)
        #expect(AEMETValue(.string("Varias")) == .several)
        #expect(AEMETValue(.string("")) == .none && AEMETValue(nil) == .none)
    }

    @Test func observationsAreHourlyUTCWithValuesAtAndOverTheHour() throws {
        let readings = try parse.observations(Fixtures.array("observacion-estacion-3195-2021"))
        #expect(readings.count == 18, "6 fields in each of 3 records; absent ones (vv, dv, inso) are skipped")
        #expect(Set(readings.map(\.series)) == ["aemet:3195"])
        let t = try #require(readings.one("temperature", at: "2021-01-08T14:00:00Z"))
        #expect(t.value == 0.1 && t.resolution == "PT0S" && t.unit == "degC" && t.quality == .measured)
        // Precipitation is over the hour that ends at fint.
        let p = try #require(readings.one("precipitation", at: "2021-01-08T13:00:00Z"))
        #expect(p.value == 1.2 && p.resolution == "PT1H" && p.unit == "mm")
        #expect(readings.one("humidity", at: "2021-01-09T12:00:00Z")?.value == 99)
        #expect(readings.one("pressure", at: "2021-01-08T15:00:00Z")?.value == 929.0)
        #expect(readings.one("temperature_min", at: "2021-01-09T11:00:00Z")?.value == -1.0)
    }

    @Test func newerObservationTimesWithPlus0000AndWindAndSunshine() throws {
        let record: JSONValue = ["idema": "3195", "fint": "2025-04-29T22:00:00+0000", "vv": 2.4, "dv": 190, "vmax": 5.1, "inso": 30.0, "prec": "Ip"]
        let readings = try parse.observations([record])
        #expect(readings.one("wind_speed", at: "2025-04-29T22:00:00Z")?.value == 2.4)
        #expect(readings.one("wind_direction", at: "2025-04-29T22:00:00Z")?.value == 190)
        #expect(readings.one("wind_gust", at: "2025-04-29T21:00:00Z")?.value == 5.1)
        #expect(readings.one("sunshine", at: "2025-04-29T21:00:00Z")?.value == 0.5, "30 minutes of sun in the hour")
        #expect(readings.one("precipitation", at: "2025-04-29T21:00:00Z")?.value == 0.05, "a trace is trace_mm")
        #expect(throws: PullError.self) { try parse.observations([["idema": "3195"]]) }
    }

    @Test func dailyValuesHaveCommaDecimalsAndSentinels() throws {
        let (readings, accumulated) = try parse.climatology(Fixtures.array("climatologicos-diarios-3194U-2019-10-subset"))
        #expect(accumulated == 0)
        #expect(readings.count == 16, "tmed, tmax, tmin and prec on 4 days")
        #expect(readings.one("temperature_mean", at: "2019-10-01T00:00:00Z")?.value == 19.0)
        #expect(readings.one("temperature_max", at: "2019-10-12T00:00:00Z")?.value == 26.1, "horatmax Varias does not matter")
        #expect(readings.one("precipitation", at: "2019-10-14T00:00:00Z")?.value == 2.1)
        #expect(readings.allSatisfy { $0.resolution == "P1D" && $0.series == "aemet:3194U" })

        let (albacete, _) = try parse.climatology(Fixtures.array("climatologicos-diarios-8178D-2022-01-01"))
        #expect(albacete.count == 9)
        #expect(albacete.one("wind_direction", at: "2022-01-01T00:00:00Z")?.value == 270, "tens of degrees")
        #expect(albacete.one("wind_gust", at: "2022-01-01T00:00:00Z")?.value == 13.1)
        #expect(albacete.one("pressure_max", at: "2022-01-01T00:00:00Z")?.value == 933.5)

        let odd: [JSONValue] = [
            ["fecha": "2023-01-11", "indicativo": "5910", "prec": "Ip", "dir": "99", "sol": "8,9"],
            ["fecha": "2023-01-12", "indicativo": "5910", "prec": "Acum", "dir": "88"],
        ]
        let (rota, acum) = try parse.climatology(odd)
        #expect(acum == 1)
        #expect(rota.one("precipitation", at: "2023-01-11T00:00:00Z")?.value == 0.05)
        #expect(rota.one("sunshine", at: "2023-01-11T00:00:00Z")?.value == 8.9)
        #expect(rota.filter { $0.quantity == "wind_direction" || $0.ts == Fixtures.utc("2023-01-12T00:00:00Z") }.isEmpty)
    }

    @Test func theHourlyForecastIsMatchedByPeriodoInLocalTime() throws {
        let readings = try parse.hourlyForecast(Fixtures.array("prediccion-horaria-28065"))
        #expect(Set(readings.map(\.series)) == ["aemet:28065"] && readings.allSatisfy { $0.quality == .forecast })
        // 08 in Getafe on 2021-01-10 (CET) is 07:00 UTC.
        #expect(readings.one("temperature", at: "2021-01-10T07:00:00Z")?.value == -1)
        #expect(readings.one("apparent_temperature", at: "2021-01-10T07:00:00Z")?.value == -6)
        #expect(readings.one("humidity", at: "2021-01-10T07:00:00Z")?.value == 100)
        #expect(readings.one("precipitation", at: "2021-01-10T08:00:00Z")?.value == 0.05, "Ip")
        #expect(readings.one("snow", at: "2021-01-10T08:00:00Z")?.value == 0.05, "Ip")
        #expect(readings.one("sky_state", at: "2021-01-10T07:00:00Z")?.value == 16, "16n: overcast, at night")
        #expect(readings.one("cloud_cover", at: "2021-01-10T07:00:00Z")?.value == 100)
        #expect(readings.one("cloud_cover", at: "2021-01-10T09:00:00Z")?.value == 25, "12: few clouds")
        let wind = try #require(readings.one("wind_speed", at: "2021-01-10T07:00:00Z"))
        #expect(abs(wind.value - 17 / 3.6) < 1e-9 && wind.unit == "m/s")
        #expect(abs((readings.one("wind_gust", at: "2021-01-10T07:00:00Z")?.value ?? 0) - 25 / 3.6) < 1e-9)
        let probability = try #require(readings.one("precipitation_probability", at: "2021-01-10T00:00:00Z"))
        #expect(probability.value == 10 && probability.resolution == "PT6H", "window 0107 starts at 01 local")
        #expect(readings.one("precipitation_probability", at: "2021-01-11T06:00:00Z") == nil, "an empty value is no value")
        let hours = Set(readings.filter { $0.quantity == "temperature" }.map(\.ts))
        #expect(hours.count == 3 + 7 && hours.max() == Fixtures.utc("2021-01-11T05:00:00Z"))
    }

    @Test func theDailyForecastKeepsTheFinestWindowsOfEachDay() throws {
        let readings = try parse.dailyForecast(Fixtures.array("prediccion-diaria-28065"))
        let first = "2021-01-08T23:00:00Z"  // local midnight of 2021-01-09
        #expect(readings.one("temperature_max", at: first)?.value == 2)
        #expect(readings.one("temperature_min", at: first)?.resolution == "P1D")
        #expect(readings.one("temperature", at: "2021-01-09T05:00:00Z")?.value == -1, "hora 6")
        #expect(readings.one("temperature", at: "2021-01-09T23:00:00Z")?.value == 1, "hora 24 is the next midnight")
        let probabilities = readings.filter { $0.quantity == "precipitation_probability" && $0.ts < Fixtures.utc("2021-01-10T00:00:00Z") }
        #expect(probabilities.map(\.resolution) == Array(repeating: "PT6H", count: 4), "00-06, 06-12, 12-18, 18-24, not 00-24 on top")
        #expect(readings.one("precipitation_probability", at: "2021-01-09T05:00:00Z")?.value == 100)
        #expect(readings.one("sky_state", at: "2021-01-09T17:00:00Z")?.value == 34, "34n")
        #expect(readings.one("wind_gust", at: first).map { abs($0.value - 40 / 3.6) < 1e-9 } == true)
        #expect(readings.one("uv_index", at: first)?.value == 1)
        // The last day has one entry without periodo, and no uvMax.
        let last = "2021-01-14T23:00:00Z"
        #expect(readings.one("precipitation_probability", at: last)?.resolution == "P1D")
        #expect(readings.one("cloud_cover", at: last)?.value == 75, "14: cloudy")
        #expect(readings.one("humidity_min", at: last)?.value == 55)
        #expect(readings.one("uv_index", at: last) == nil)
    }

    @Test func canaryMunicipalitiesAreAnHourBehind() {
        #expect(AEMETReadings.zone(municipality: "35016").identifier == "Atlantic/Canary")
        #expect(AEMETReadings.zone(municipality: "38038").identifier == "Atlantic/Canary")
        #expect(AEMETReadings.zone(municipality: "28065").identifier == "Europe/Madrid")
        #expect(AEMETReadings.zone(municipality: "080018").identifier == "Europe/Madrid")
    }

    @Test func envelopesAreCheckedByEstado() throws {
        let ok = try JSONValue.parse(Fixtures.text("envelope-200-diaria-080018-native-format"))
        #expect(throws: Never.self) { try AEMETClient.check(ok) }
        #expect(ok["datos"]?.stringValue == "https://opendata.aemet.es/opendata/sh/36188a6b")
        let station = try JSONValue.parse(Fixtures.text("envelope-200-observacion-3195"))
        #expect(AEMETClient.errorBody(station, status: 200) == nil)
        #expect(station["datos"]?.stringValue == "https://opendata.aemet.es/opendata/sh/208c3ca3")
        for (name, kind) in [("error-404-sin-datos", PullError.Kind.noData), ("error-401-api-key-invalido", .auth)] {
            let json = try JSONValue.parse(Fixtures.text(name))
            #expect(AEMETClient.errorBody(json, status: 200)?.kind == kind, "\(name)")
        }
        #expect(AEMETClient.errorBody(["descripcion": "Se ha alcanzado uno de los límites de uso.", "estado": 429], status: 200)?.kind == .rateLimit)
    }
}
