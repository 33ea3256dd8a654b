import EnchufeCore
import Foundation
import HTTPPull
import REData
import Testing

@Suite struct REDataAnswerTests {
    func fixture(_ name: String) throws -> JSONValue { try Fixtures.json(name) }
    func utc(_ text: String) -> Date { Fixtures.utc(text) }

    @Test func pvpcAndSpotOfAnOrdinaryDayAreTwoHourlySeriesByIndicatorId() throws {
        let readings = try REDataAnswer.readings(fixture("precios-mercados-tiempo-real_2021-06-01_pvpc-and-spot"), options: .init(geoID: "8741"))
        let pvpc = readings.filter { $0.series == "ree:1001:8741" }
        let spot = readings.filter { $0.series == "ree:600:8741" }
        #expect(pvpc.count == 24)
        #expect(spot.count == 24)
        #expect(readings.count == 48, "nothing but the two series")
        #expect(pvpc.first?.ts == utc("2021-05-31T22:00:00Z"), "00:00 in Madrid (CEST) is 22:00 UTC the day before")
        #expect(pvpc.last?.ts == utc("2021-06-01T21:00:00Z"))
        #expect(Set(readings.map(\.resolution)) == ["PT1H"])
        #expect(Set(readings.map(\.quantity)) == ["price"])
        #expect(Set(readings.map(\.unit)) == ["EUR/MWh"])
        #expect(spot.allSatisfy { $0.quality == .measured })
    }

    @Test func theAutumnDSTDayHas25HoursAndTheRepeatedHourTwice() throws {
        let readings = try REDataAnswer.readings(fixture("precios-mercados-tiempo-real_2021-10-31_dst-autumn_25h"))
        let pvpc = readings.filter { $0.series == "ree:1001" }
        #expect(pvpc.count == 25)
        #expect(Set(pvpc.map(\.ts)).count == 25, "the repeated 02:00 is two instants")
        // 02:00+02:00 (00:00 UTC) 109.55 and 02:00+01:00 (01:00 UTC) 104.85, from the answer.
        #expect(pvpc.first { $0.ts == utc("2021-10-31T00:00:00Z") }?.value == 109.55)
        #expect(pvpc.first { $0.ts == utc("2021-10-31T01:00:00Z") }?.value == 104.85)
        #expect(pvpc.first?.ts == utc("2021-10-30T22:00:00Z"))
        #expect(pvpc.last?.ts == utc("2021-10-31T22:00:00Z"), "23:00 CET is 22:00 UTC")
        #expect(pvpc.first?.value == 171.48)
        let spot = readings.filter { $0.series == "ree:600" }
        #expect(spot.first { $0.ts == utc("2021-10-31T01:00:00Z") }?.value == 69.37)
        #expect(Set(readings.map(\.resolution)) == ["PT1H"], "25 values an hour apart in UTC")
    }

    @Test func ceutaGetsOnlyPVPCUnderItsGeography() throws {
        let readings = try REDataAnswer.readings(fixture("precios-mercados-tiempo-real_2021-06-01_geo_ids-8744_pvpc-only"), options: .init(geoID: "8744"))
        #expect(Set(readings.map(\.series)) == ["ree:1001:8744"])
        #expect(readings.count == 24)
    }

    @Test func quarterHourValuesAreKeptAtPT15MBesideHourlyOnes() throws {
        func values(count: Int, step: Int) -> JSONValue {
            .array((0..<count).map { i in
                ["value": .number(Double(i)), "datetime": .string(ISO8601.string(utc("2025-11-02T23:00:00Z").addingTimeInterval(Double(i * step))))]
            })
        }
        let answer: JSONValue = ["included": [
            ["id": "1001", "attributes": ["title": "PVPC (€/MWh)", "magnitude": "price", "values": values(count: 24, step: 3600)]],
            ["id": "600", "attributes": ["title": "Precio mercado spot (€/MWh)", "magnitude": "price", "values": values(count: 96, step: 900)]],
        ]]
        let readings = try REDataAnswer.readings(answer)
        #expect(readings.filter { $0.series == "ree:600" }.allSatisfy { $0.resolution == "PT15M" })
        #expect(readings.filter { $0.series == "ree:1001" }.allSatisfy { $0.resolution == "PT1H" })
        #expect(readings.filter { $0.series == "ree:600" }.count == 96)
    }

    @Test func errorBodiesAreClassified() {
        let notYet: JSONValue = ["errors": [["status": "400", "title": "Error Interno", "detail": "Los datos solicitados no están disponibles en este momento. Inténtelo de nuevo más tarde."]]]
        let later = #expect(throws: PullError.self) { try REDataAnswer.readings(notYet) }
        #expect(later?.kind == .noData)
        #expect(later?.status == 400)
        let other: JSONValue = ["errors": [["code": 500, "status": "500", "title": "Error", "detail": "Widget desconocido"]]]
        #expect(#expect(throws: PullError.self) { try REDataAnswer.readings(other) }?.kind == .upstream)
        #expect(#expect(throws: PullError.self) { try REDataAnswer.readings(["data": [:]]) }?.kind == .malformed)
    }
}
