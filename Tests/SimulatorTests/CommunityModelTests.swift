import Foundation
import Testing
import EnchufeCore

@testable import Simulator

@Suite struct CommunityModelTests {
    let model = CommunityModel(seed: 7, households: 40, latitude: 40.4)
    let noon = ISO8601DateFormatter().date(from: "2026-06-21T12:00:00Z")!
    let midnight = ISO8601DateFormatter().date(from: "2026-06-21T00:00:00Z")!

    @Test func theSameSeedGivesTheSameCommunityAndReadings() {
        let other = CommunityModel(seed: 7, households: 40, latitude: 40.4)
        #expect(other.households == model.households)
        var a: [Double] = [], b: [Double] = []
        #expect(model.step(start: noon, seconds: 900, soc: &a) == other.step(start: noon, seconds: 900, soc: &b))
        let different = CommunityModel(seed: 8, households: 40, latitude: 40.4)
        #expect(different.households != model.households)
    }

    @Test func householdsHaveValidCUPSCodes() {
        #expect(model.households.allSatisfy { CUPS.isValid($0.cups) })
        #expect(Set(model.households.map(\.cups)).count == 40)
        #expect(CUPS.isValid("ES0021000000000001AB") == false)
    }

    @Test func panelsProduceAtMiddayAndNothingAtNight() {
        var soc: [Double] = []
        let day = model.step(start: noon, seconds: 900, soc: &soc)
        let night = model.step(start: midnight, seconds: 900, soc: &soc)
        for (h, (d, n)) in zip(model.households, zip(day, night)) {
            #expect(n.generationKWh == 0)
            if h.pvKWp > 0 { #expect(d.generationKWh > 0) } else { #expect(d.generationKWh == 0) }
        }
    }

    @Test func energyBalancesForHouseholdsWithoutBatteries() {
        var soc: [Double] = []
        for (h, e) in zip(model.households, model.step(start: noon, seconds: 900, soc: &soc)) where h.batteryKWh == 0 {
            #expect(abs((e.importKWh - e.exportKWh) - (e.loadKWh - e.generationKWh)) < 0.001)
            #expect(e.importKWh == 0 || e.exportKWh == 0)
        }
    }

    @Test func batteriesChargeFromSurplusAndStayWithinBounds() {
        var soc: [Double] = []
        var start = ISO8601DateFormatter().date(from: "2026-06-21T08:00:00Z")!
        let batteries = model.households.indices.filter { model.households[$0].batteryKWh > 0 }
        #expect(!batteries.isEmpty)
        var before: [Double] = []
        for step in 0..<16 {  // 08:00 to 12:00 UTC, a sunny June morning
            let out = model.step(start: start, seconds: 900, soc: &soc)
            if step == 0 { before = batteries.map { soc[$0] } }
            for i in batteries { #expect((0...100).contains(out[i].socPercent ?? -1)) }
            start.addTimeInterval(900)
        }
        let after = batteries.map { soc[$0] }
        #expect(zip(before, after).contains { $1 > $0 }, "some battery should charge over a sunny morning")
    }

    @Test func eveningsUseMoreThanEarlyAfternoonsAtNight() {
        var soc: [Double] = []
        let evening = model.step(start: ISO8601DateFormatter().date(from: "2026-01-14T20:00:00Z")!, seconds: 3600, soc: &soc)
        let small = model.step(start: ISO8601DateFormatter().date(from: "2026-01-14T03:30:00Z")!, seconds: 3600, soc: &soc)
        let eveningLoad = evening.map(\.loadKWh).reduce(0, +)
        let nightLoad = small.enumerated().filter { !model.households[$0.offset].hasEV }.map(\.element.loadKWh).reduce(0, +)
        #expect(eveningLoad > nightLoad)
    }
}
