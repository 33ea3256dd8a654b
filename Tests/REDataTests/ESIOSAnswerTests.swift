import EnchufeCore
import Foundation
import HTTPPull
import REData
import Testing

@Suite struct ESIOSAnswerTests {
    func fixture(_ name: String) throws -> JSONValue { try Fixtures.json(name) }
    func utc(_ text: String) -> Date { Fixtures.utc(text) }

    @Test func pvpcOfTheAutumnDayKeepsFiveGeographiesApartAndTheRepeatedHourTwice() throws {
        let readings = try ESIOSAnswer.readings(fixture("indicator_1001_pvpc_2021-10-31_dst-autumn_5geos"))
        #expect(readings.count == 125)
        #expect(Set(readings.map(\.series)) == Set(["8741", "8742", "8743", "8744", "8745"].map { "esios:1001:\($0)" }))
        let peninsula = readings.filter { $0.series == "esios:1001:8741" }
        #expect(peninsula.count == 25)
        #expect(Set(peninsula.map(\.ts)).count == 25, "datetime_utc repeats 00:00Z; datetime and tz_time do not")
        #expect(peninsula.first { $0.ts == utc("2021-10-31T00:00:00Z") }?.value == 109.55)
        #expect(peninsula.first { $0.ts == utc("2021-10-31T01:00:00Z") }?.value == 104.85)
        #expect(peninsula.first?.ts == utc("2021-10-30T22:00:00Z"))
        #expect(Set(readings.map(\.resolution)) == ["PT1H"])
        #expect(Set(readings.map(\.unit)) == ["EUR/MWh"])
        #expect(Set(readings.map(\.quantity)) == ["price"])
    }

    @Test func anOrdinaryWinterDayHas24HoursPerGeography() throws {
        let readings = try ESIOSAnswer.readings(fixture("indicator_1001_pvpc_2024-03-09_5geos"))
        #expect(readings.count == 120)
        let peninsula = readings.filter { $0.series == "esios:1001:8741" }
        #expect(peninsula.count == 24)
        #expect(peninsula.first?.ts == utc("2024-03-08T23:00:00Z"), "00:00 CET")
        #expect(peninsula.first?.value == 44.98)
    }

    @Test func singleGeographyIndicatorsOfTheAutumnDay() throws {
        let average = try ESIOSAnswer.readings(fixture("indicator_10211_2021-10-31_dst-autumn"))
        #expect(average.count == 25)
        #expect(Set(average.map(\.series)) == ["esios:10211:8741"])
        #expect(average.first?.value == 140.84)
        let surplus = try ESIOSAnswer.readings(fixture("indicator_1739_surplus_2021-10-31_dst-autumn"))
        #expect(Set(surplus.map(\.series)) == ["esios:1739:3"])
        #expect(Set(surplus.map(\.ts)).count == 25)
        #expect(surplus.first?.value == 132.9)
    }

    @Test func aDatetimeThatDisagreesWithTzTimeIsMalformed() {
        let answer: JSONValue = ["indicator": ["id": 1001, "values": [
            ["value": 1, "datetime": "2021-10-31T02:00:00.000+01:00", "tz_time": "2021-10-31T00:00:00.000Z", "geo_id": 8741],
        ]]]
        #expect(#expect(throws: PullError.self) { try ESIOSAnswer.readings(answer) }?.kind == .malformed)
    }
}
