@testable import Datadis
import EnchufeCore
import Foundation
import HTTPPull
import Testing

/// The recorded Datadis answers in Fixtures/ (copied from ../shared/fixtures/datadis).
enum Fixtures {
    static func text(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "json"))
        return String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }

    static func json(_ name: String) throws -> JSONValue { try JSONValue.parse(text(name)) }

    static func utc(_ text: String) -> Date { ISO8601.date(text)! }
}

extension [Reading] {
    func at(_ ts: String, _ quantity: String = "consumption") -> [Reading] {
        filter { $0.ts == Fixtures.utc(ts) && $0.quantity == quantity }
    }
}

@Suite struct DatadisCurveTests {
    static let cups = "ES00210000XXXXXXXXXX"

    /// The sum of a quantity's field over the payload's rows, as the distributor sent them.
    static func payloadTotal(_ rows: [JSONValue], _ field: String) -> Double {
        rows.compactMap { $0[field]?.doubleValue }.reduce(0, +)
    }

    @Test func theAutumnDayWithTheRepeatedHourMergedIsSplitIntoTwoEstimatedHalves() throws {
        let rows = try DatadisAnswer.rows(Fixtures.json("consumption_v1_eddie_dst_autumn_2023-10-29_24rows_merged"), key: "timeCurve").rows
        let (readings, rejected) = DatadisCurve.readings(rows, series: Self.cups)
        #expect(rejected.isEmpty)
        let consumption = readings.filter { $0.quantity == "consumption" }
        #expect(consumption.count == 25, "25 hours")
        #expect(Set(consumption.map(\.ts)).count == 25)
        // 00:00 CEST is 22:00 UTC the day before.
        #expect(consumption.first { $0.ts == Fixtures.utc("2023-10-28T22:00:00Z") }?.value == 1.274)
        let halves = readings.at("2023-10-28T23:00:00Z") + readings.at("2023-10-29T00:00:00Z")
        #expect(halves.map(\.value) == [1.283, 1.283] && halves.allSatisfy { $0.quality == .estimated }, "the 02:00 row (2.566 kWh) covers two hours")
        #expect(readings.at("2023-10-29T01:00:00Z").first?.value == 1.296, "03:00 is 02:00-03:00 CET")
        #expect(readings.at("2023-10-29T22:00:00Z").first?.value == 1.227, "24:00 is 23:00-24:00 CET")
        #expect(consumption.allSatisfy { $0.resolution == "PT1H" && $0.unit == "kWh" && $0.series == Self.cups })
        #expect(abs(consumption.map(\.value).reduce(0, +) - Self.payloadTotal(rows, "consumptionKWh")) < 1e-9, "the day's energy is the sum of its rows")
        #expect(readings.filter { $0.quantity == "surplus" }.count == 25)
    }

    @Test func theSpringDayHas23HoursWith0200Missing() throws {
        let rows = try DatadisAnswer.rows(Fixtures.json("consumption_v1_eddie_dst_spring_2024-03-31_23rows"), key: "timeCurve").rows
        let (readings, rejected) = DatadisCurve.readings(rows, series: Self.cups)
        #expect(rejected.isEmpty)
        let consumption = readings.filter { $0.quantity == "consumption" }.sorted { $0.ts < $1.ts }
        #expect(consumption.count == 23)
        #expect(consumption[0].ts == Fixtures.utc("2024-03-30T23:00:00Z") && consumption[0].value == 0.845)
        #expect(consumption[1].ts == Fixtures.utc("2024-03-31T00:00:00Z") && consumption[1].value == 0.836, "the hour from 01:00 CET to 03:00 CEST")
        #expect(consumption[2].ts == Fixtures.utc("2024-03-31T01:00:00Z") && consumption[2].value == 0.899)
        #expect(consumption[22].ts == Fixtures.utc("2024-03-31T21:00:00Z") && consumption[22].value == 0.876)
        #expect(consumption.allSatisfy { $0.quality == .measured }, "an empty obtainMethod is the distributor's reading")
        #expect(abs(consumption.map(\.value).reduce(0, +) - Self.payloadTotal(rows, "consumptionKWh")) < 1e-9)
    }

    @Test func twentyFiveRowsWithARepeatedLabelArePlacedByPosition() {
        var rows: [JSONValue] = []
        for h in 1...24 {
            rows.append(["date": "2025/10/26", "time": .string(String(format: "%02d:00", h)), "consumptionKWh": .number(Double(h)), "obtainMethod": "Real"])
            if h == 3 { rows.append(["date": "2025/10/26", "time": "03:00", "consumptionKWh": 3.5, "obtainMethod": "Real"]) }
        }
        let (readings, rejected) = DatadisCurve.readings(rows, series: "ES1")
        #expect(rejected.isEmpty && readings.count == 25)
        #expect(readings.at("2025-10-26T00:00:00Z").first?.value == 3, "first 03:00: 02:00-03:00 CEST")
        #expect(readings.at("2025-10-26T01:00:00Z").first?.value == 3.5, "second 03:00: 02:00-03:00 CET")
        #expect(readings.at("2025-10-26T02:00:00Z").first?.value == 4)
        #expect(readings.at("2025-10-26T22:00:00Z").first?.value == 24)
    }

    @Test func strayZeroHourRowsAreRejectedOneByOneAndTheRestKept() throws {
        let rows = try DatadisAnswer.rows(Fixtures.json("consumption_v2_edata_test_ide_zero_hour_glitch"), key: "timeCurve").rows
        let (readings, rejected) = DatadisCurve.readings(rows, series: "ES0031")
        #expect(rejected.map(\.time) == ["00:00"] && rejected[0].reason.contains("01:00..24:00"))
        // An incomplete day: labels are read as interval ends in Madrid (CEST on 2022-10-22).
        #expect(readings.at("2022-10-21T22:00:00Z").first?.value == 0.203)
        #expect(readings.at("2022-10-21T23:00:00Z").first?.value == 0.163)
        #expect(readings.filter { $0.quantity == "consumption" }.count == 2)
    }

    @Test func selfConsumptionFieldsNullsAndEstimatedRows() throws {
        let answer = try DatadisAnswer.rows(Fixtures.json("consumption_v2_tus-consumos_mock_selfconsumption_fields"), key: "timeCurve")
        let (readings, _) = DatadisCurve.readings(answer.rows, series: "ES0021000000123456AB")
        #expect(readings.at("2024-02-29T23:00:00Z", "surplus").first?.value == 0.52)
        #expect(readings.at("2024-03-01T00:00:00Z", "surplus").isEmpty, "null is no value, not zero")
        #expect(readings.at("2024-03-01T06:00:00Z").first?.value == 0.346, "08:00 ends 07:00-08:00 CET")
        #expect(readings.filter { $0.quantity == "generation" }.isEmpty)

        let official = try DatadisAnswer.rows(Fixtures.json("consumption_v1_official_datadis_email_2023-06_surplus"), key: "timeCurve").rows
        let (mail, _) = DatadisCurve.readings(official, series: "ES00XXXXXXXXXXXXXXXXXF")
        #expect(mail.at("2023-04-30T22:00:00Z", "surplus").first?.value == 0.567)
        #expect(mail.at("2023-04-30T22:00:00Z").first?.value == 0.0, "a real zero is kept")

        let december = try DatadisAnswer.rows(Fixtures.json("consumption_v1_eddie_day_2023-12-01_with_surplus"), key: "timeCurve").rows
        let (day, rejected) = DatadisCurve.readings(december, series: "ES1")
        #expect(rejected.isEmpty)
        let estimated = december.filter { $0["obtainMethod"]?.stringValue == "Estimada" }.count
        #expect(day.filter { $0.quality == .estimated && $0.quantity == "consumption" }.count == estimated)
        #expect(abs(day.filter { $0.quantity == "consumption" }.map(\.value).reduce(0, +) - Self.payloadTotal(december, "consumptionKWh")) < 1e-9)
    }

    @Test func aDistributorErrorWithoutRowsIsAPartialFailureNotZero() throws {
        let answer = try DatadisAnswer.rows(Fixtures.json("consumption_v2_lenorix_distributor_error_only"), key: "timeCurve")
        #expect(answer.rows.isEmpty && answer.errors.count == 1)
        #expect(!answer.errors[0].errorDescription.isEmpty)
    }

    @Test func maxPowerIsInKWAtItsLocalQuarterHour() throws {
        let rows = try DatadisAnswer.rows(Fixtures.json("max_power_v2_edata_test"), key: "maxPower").rows
        let (readings, rejected) = DatadisCurve.maxPower(rows, series: "ES1")
        #expect(rejected.isEmpty && readings.count == 3)
        #expect(readings[0].ts == Fixtures.utc("2022-03-10T13:15:00Z") && readings[0].value == 2.436 && readings[0].unit == "kW")
        #expect(readings[2].ts == Fixtures.utc("2022-03-27T08:30:00Z"), "10:30 CEST, after the spring change")
    }
}

@Suite struct DatadisSupplyTests {
    @Test func suppliesAreReadWithTheirZoneAndOneRowPerCUPS() throws {
        let v1 = try DatadisAnswer.supplies(DatadisAnswer.rows(Fixtures.json("supplies_v1_eddie_ide_pointtype4"), key: "supplies").rows, tenant: "t")
        #expect(v1.count == 1 && v1[0].distributorCode == "8" && v1[0].pointType == 4 && v1[0].zone == "peninsula")
        #expect(v1[0].validFrom == nil && v1[0].validTo == nil)

        let v2 = try DatadisAnswer.rows(Fixtures.json("supplies_v2_tus-consumos_mock_with_distributor_errors"), key: "supplies")
        #expect(v2.errors.count == 5)
        #expect(try DatadisAnswer.supplies(v2.rows, tenant: "t").count == v2.rows.count)

        let rows: [JSONValue] = [
            ["cups": "ES0031000000000001AB0F", "distributorCode": "8", "pointType": 5, "validDateFrom": "2019/01/01", "validDateTo": "2022/05/31", "postalCode": "07001"],
            ["cups": "ES0031000000000001AB", "distributorCode": "8", "pointType": 5, "validDateFrom": "2022/06/01", "validDateTo": "", "postalCode": "07001"],
            ["cups": "ES0031000000000002CD", "distributorCode": "2", "pointType": 5, "validDateFrom": "2020/01/01", "validDateTo": "2021/01/01", "postalCode": "35001"],
            ["cups": "ES0031000000000002CD", "distributorCode": "2", "pointType": 5, "validDateFrom": "2021/01/02", "validDateTo": "2023/01/01", "postalCode": "35001"],
        ]
        let resolved = try DatadisAnswer.supplies(rows, tenant: "t")
        #expect(resolved.map(\.validFrom) == ["2022-06-01", "2021-01-02"], "the open row, else the newest")
        #expect(resolved.map(\.zone) == ["baleares", "canarias"])
    }

    @Test func contractsGiveTariffAndPowersAndABlankRowIsNoContract() throws {
        let supply = SupplyPoint(tenant: "t", cups: "ES0000000000000000AA0A", zone: "peninsula", distributorCode: "2")
        let rows = try DatadisAnswer.rows(Fixtures.json("contract_detail_v1_lenorix_authorized_verified_shape"), key: "contract").rows
        let contract = try #require(DatadisAnswer.contract(rows, into: supply))
        #expect(contract.tariff == "2.0TD" && contract.contractedPowerKW == [3.45, 3.45])
        #expect(contract.raw?["contract"]?["startDate"] == "2024/02/01")

        let maximeter = try DatadisAnswer.rows(Fixtures.json("contract_detail_v1_eddie_ide_3T_maximetro"), key: "contract").rows
        #expect(DatadisAnswer.contract(maximeter, into: supply)?.tariff == "3.0TD")
        let v2 = try DatadisAnswer.rows(Fixtures.json("contract_detail_v2_tus-consumos_mock"), key: "contract").rows
        #expect(DatadisAnswer.contract(v2, into: supply)?.contractedPowerKW.isEmpty == false)

        let blank: [JSONValue] = [["cups": "", "distributor": "", "contractedPowerkW": [], "startDate": "", "endDate": nil, "codeFare": ""]]
        #expect(DatadisAnswer.contract(blank, into: supply) == nil)
        #expect(DatadisAnswer.tariff(codeFare: nil, accessFare: "BAJA TENSION Y POTENCIA  > 15 kW") == "3.0TD")
    }
}
