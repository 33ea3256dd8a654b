import EnchufeCore
import Foundation
import HTTPPull
@testable import REData
import Testing

@Suite struct PVPCArchiveTests {
    @Test func theSpringDayHas23HoursLabelledByLocalHour() throws {
        let readings = try PVPCArchive.readings(Fixtures.json("archive_70_pvpc_download_json_2022-03-27_dst-spring_23h"))
        let pcb = readings.filter { $0.series == "esios:archive70:PCB" }
        #expect(pcb.count == 23 && readings.count == 46)
        #expect(pcb[0].ts == Fixtures.utc("2022-03-26T23:00:00Z") && pcb[0].value == 171.48)
        // "03-04" follows "01-02": 03:00 CEST is 01:00 UTC, an hour after 01:00 CET.
        #expect(pcb[1].ts == Fixtures.utc("2022-03-27T00:00:00Z"))
        #expect(pcb[2].ts == Fixtures.utc("2022-03-27T01:00:00Z") && pcb[2].value == 104.85)
        #expect(pcb[22].ts == Fixtures.utc("2022-03-27T21:00:00Z") && pcb[22].value == 152.39)
        #expect(readings.allSatisfy { $0.unit == "EUR/MWh" && $0.resolution == "PT1H" && $0.quantity == "price" })
    }

    @Test func theAutumnDayHas25HoursLabelledByPosition() throws {
        let readings = try PVPCArchive.readings(Fixtures.json("archive_70_pvpc_download_json_2021-10-31_dst-autumn_25h"))
        let cym = readings.filter { $0.series == "esios:archive70:CYM" }
        #expect(cym.count == 25 && Set(cym.map(\.ts)).count == 25)
        #expect(cym[0].ts == Fixtures.utc("2021-10-30T22:00:00Z"))
        // "02-03" and "03-04" are 02:00 CEST and the repeated 02:00 CET.
        #expect(cym[2].ts == Fixtures.utc("2021-10-31T00:00:00Z") && cym[2].value == 109.55)
        #expect(cym[3].ts == Fixtures.utc("2021-10-31T01:00:00Z"))
        #expect(cym[24].ts == Fixtures.utc("2021-10-31T22:00:00Z") && cym[24].value == 146.12, "24-25 is 23:00 CET")
    }

    @Test func aMissingRowIsMalformedNotAShiftedDay() throws {
        var json = try Fixtures.json("archive_70_pvpc_download_json_2021-10-31_dst-autumn_25h")
        var rows = try #require(json["PVPC"]?.arrayValue)
        rows.remove(at: 5)
        json = ["PVPC": .array(rows)]
        #expect { try PVPCArchive.readings(json) } throws: { ($0 as? PullError)?.kind == .malformed }
        #expect(try PVPCArchive.readings(["PVPC": []]).isEmpty)
    }
}
