import EnchufeCore
import Foundation
import Simulator
import TestSupport
import Testing

/// The community market's invariants on a simulated month: 20 households (60 % with PV) of the
/// simulator, May 2025 by quarter-hours; each household's surplus and deficit after its own use are
/// cleared every interval by both rules at the midpoint of an hourly retail price and the
/// compensation price. The month's traded energy and savings are printed.
@Suite struct CommunityMarketMonthTests {
    @Test func everyIntervalOfASimulatedMonthBalancesEnergyAndMoneyUnderBothRules() async {
        await onOwnThread { Self.clearMay2025() }
    }

    static func clearMay2025() {
        let model = CommunityModel(seed: 5, households: 20, latitude: 40.4, pvShare: 0.6, batteryShare: 0, evShare: 0.2)
        let zone = LocalDay.madrid
        var soc: [Double] = []
        var t = LocalDay(year: 2025, month: 5, day: 1).start(in: zone)
        let end = LocalDay(year: 2025, month: 6, day: 1).start(in: zone)
        // Orders for the priority rule: some sellers ask above the price, some buyers bid below it.
        let orders = model.households.indices.map { i in i % 5 == 0 ? MarketOrder(bid: 0.05, ask: 0.30) : (i % 3 == 0 ? MarketOrder(ask: 0.02) : nil) }
        var traded: [CommunityMarket.Rule: Double] = [:], savings: [CommunityMarket.Rule: Double] = [:]
        var intervals = 0, withTrade = 0
        while t < end {
            let hour = LocalDay.calendar(zone).component(.hour, from: t)
            let retail = (10..<14).contains(hour) || (18..<22).contains(hour) ? 0.24 : (hour < 8 ? 0.10 : 0.16)
            let compensation = 0.06, price = (retail + compensation) / 2
            let members = model.step(start: t, seconds: 900, soc: &soc).enumerated().map { i, interval in
                CommunityMarket.Member(cups: model.households[i].cups, surplus: interval.exportKWh, deficit: interval.importKWh, order: orders[i])
            }
            for rule in CommunityMarket.Rule.allCases {
                let clearing = CommunityMarket(rule: rule).clear(members, price: price)
                let bought = clearing.members.reduce(0) { $0 + $1.bought }, sold = clearing.members.reduce(0) { $0 + $1.sold }
                #expect(abs(bought - sold) < 1e-9)
                #expect(abs(clearing.members.reduce(0) { $0 + $1.value }) < 1e-9)
                for (m, r) in zip(members, clearing.members) {
                    #expect(r.sold <= m.surplus + 1e-12 && r.bought <= m.deficit + 1e-12 && r.sold >= 0 && r.bought >= 0)
                }
                if rule == .priority {
                    // Orders beyond the price never trade.
                    for (i, r) in clearing.members.enumerated() where i % 5 == 0 { #expect(r.sold == 0 && r.bought == 0) }
                }
                traded[rule, default: 0] += clearing.traded
                savings[rule, default: 0] += clearing.members.reduce(0) { $0 + $1.bought * (retail - price) + $1.sold * (price - compensation) }
                if rule == .proRata && clearing.traded > 0 { withTrade += 1 }
            }
            intervals += 1
            t = t.addingTimeInterval(900)
        }
        for rule in CommunityMarket.Rule.allCases {
            print("community market, 20 simulated households, May 2025 (\(intervals) quarter-hours, \(withTrade) with trade), \(rule.rawValue): traded \(traded[rule]!) kWh, savings against the grid \(savings[rule]!) EUR")
        }
        #expect(intervals == 31 * 96)
        #expect(withTrade > 0 && traded[.proRata]! > traded[.priority]!)
    }
}
