import EnchufeCore
import Foundation
import Testing

@testable import Optimizer

/// The schedule optimizer (Connectors/Optimizer/Schedule.swift) against brute force on small
/// cases, and what it reports when limits cannot all be met.
@Suite struct ScheduleTests {
    static let t0 = ISO8601.date("2026-06-01T00:00:00Z")!

    /// Energy cost of a net demand per interval (kWh): bought at `buy`, the rest sold at `sell`.
    static func cost(_ net: [Double], _ buy: [Double], _ sell: [Double]) -> Double {
        net.indices.reduce(0) { $0 + ($1 < net.count ? (net[$1] > 0 ? buy[$1] * net[$1] : sell[$1] * net[$1]) : 0) }
    }

    /// Every combination of choices per interval (each interval one of `choices`).
    static func combinations(_ count: Int, _ choices: [Double]) -> [[Double]] {
        var all: [[Double]] = [[]]
        for _ in 0..<count { all = all.flatMap { prefix in choices.map { prefix + [$0] } } }
        return all
    }

    @Test func aBatteryAndADeferrableLoadMatchBruteForce() throws {
        let buy = [0.10, 0.30, 0.05, 0.25, 0.40, 0.12], sell = [0.04, 0.04, 0.02, 0.05, 0.04, 0.03]
        let load = [1.0, 2, 1, 0, 2, 1], pv = [0.0, 0, 2, 3, 1, 0]
        var problem = ScheduleProblem(start: Self.t0, seconds: 3600, buy: buy, sell: sell, load: load, pv: pv)
        problem.batteries = [ScheduleProblem.Battery(id: "battery", capacityKWh: 2, chargeKW: 1, dischargeKW: 1, efficiency: 1, socMin: 0, socMax: 1, socStart: 0.5)]
        problem.loads = [ScheduleProblem.DeferrableLoad(id: "washer", kw: 1, duration: 2, earliest: 1, latest: 6)]
        let plan = try problem.plan()

        // Brute force: the battery moves -1, 0 or +1 kWh an interval within 0...2 kWh, ending at
        // 1 kWh or more; the washer starts in hour 1, 2, 3 or 4.
        var best = Double.infinity
        for moves in Self.combinations(6, [-1, 0, 1]) {
            var soc = 1.0, ok = true
            for m in moves {
                soc += m
                if soc < -1e-9 || soc > 2 + 1e-9 { ok = false }
            }
            guard ok, soc >= 1 - 1e-9 else { continue }
            for start in 1...4 {
                let net = (0..<6).map { t in load[t] - pv[t] + moves[t] + ((start..<start + 2).contains(t) ? 1 : 0) }
                best = min(best, Self.cost(net, buy, sell))
            }
        }
        #expect(abs(plan.cost - best) < 1e-6, "optimizer \(plan.cost), brute force \(best)")
        #expect(plan.violations.isEmpty)
        #expect(plan.setpoints["washer"]?.filter { $0 == 1 }.count == 2)
        #expect(plan.cost <= problem.baseline().cost + 1e-9)
    }

    @Test func aChargerWithAMinimumPowerMatchesBruteForce() throws {
        let buy = [0.20, 0.08, 0.15, 0.06, 0.30], sell = [0.0, 0, 0, 0, 0]
        var problem = ScheduleProblem(start: Self.t0, seconds: 3600, buy: buy, sell: sell, load: [0.5, 0.5, 0.5, 0.5, 0.5], pv: [0, 1, 2, 0, 0])
        problem.chargers = [ScheduleProblem.Charger(id: "car", energyKWh: 3, minKW: 1, maxKW: 2, from: 0, deadline: 5)]
        let plan = try problem.plan()
        var best = Double.infinity
        for energies in Self.combinations(5, [0, 1, 1.5, 2]) where abs(energies.reduce(0, +) - 3) < 1e-9 {
            let net = (0..<5).map { 0.5 - problem.pv[$0] + energies[$0] }
            best = min(best, Self.cost(net.map { max($0, 0) }, buy, sell))
        }
        #expect(abs(plan.cost - best) < 1e-6, "optimizer \(plan.cost), brute force \(best)")
        #expect(plan.setpoints["car"]!.allSatisfy { $0 == 0 || ($0 >= 1 - 1e-9 && $0 <= 2 + 1e-9) })
        #expect(abs(plan.setpoints["car"]!.reduce(0, +) - 3) < 1e-9)
    }

    @Test func anImpossibleDemandGivesAPlanThatSaysWhatItCouldNotMeet() throws {
        // The car needs 60 kWh in 2 hours (eight quarter-hours) from a 7 kW charger.
        let n = 8
        func problem(importLimitKW: Double?, load: Double) -> ScheduleProblem {
            var p = ScheduleProblem(
                start: Self.t0, seconds: 900, buy: Array(repeating: 0.2, count: n), sell: Array(repeating: 0.05, count: n),
                load: Array(repeating: load * 0.25, count: n), pv: Array(repeating: 0, count: n), importLimitKW: Array(repeating: importLimitKW, count: n))
            p.chargers = [ScheduleProblem.Charger(id: "car", energyKWh: 60, minKW: 1.4, maxKW: 7, from: 0, deadline: n)]
            return p
        }
        let plan = try problem(importLimitKW: nil, load: 1).plan()
        let car = plan.violations.first { $0.asset == "car" }
        #expect(car?.limit == "energy_kwh")
        #expect(abs((car?.amount ?? 0) - 46) < 1e-6, "7 kW for 2 h is 14 kWh: 46 short")
        #expect(car?.detail == "60 kWh needed, at most 7 kW for 2 h before the deadline")
        #expect(plan.setpoints["car"] == Array(repeating: 7, count: n))

        // With a 5 kW contracted power beside a 1 kW house the car gets 4 kW: the breaker comes first.
        let limited = try problem(importLimitKW: 5, load: 1).plan()
        #expect(limited.violations.map(\.asset) == ["car"])
        #expect(abs((limited.violations.first?.amount ?? 0) - 52) < 1e-6)
        #expect(limited.gridImport.allSatisfy { $0 <= 5 * 0.25 + 1e-9 })

        // A house using 6 kW on its own cannot keep within 5 kW: said, with by how much.
        let over = try problem(importLimitKW: 5, load: 6).plan()
        let grid = over.violations.first { $0.asset == "grid" }
        #expect(grid?.limit == "import_kw" && abs((grid?.amount ?? 0) - Double(n) * 0.25) < 1e-6)
        #expect(grid?.detail == "imports beyond the contracted power in 8 intervals")
    }

    @Test func aBatteryStartingBelowItsMinimumIsReportedNotInfeasible() throws {
        var problem = ScheduleProblem(start: Self.t0, seconds: 3600, buy: [0.1, 0.1], sell: [0, 0], load: [0, 0], pv: [0, 0])
        problem.batteries = [ScheduleProblem.Battery(id: "b", capacityKWh: 10, chargeKW: 1, dischargeKW: 1, efficiency: 1, socMin: 0.5, socMax: 1, socStart: 0.2)]
        let plan = try problem.plan()
        #expect(plan.violations.map(\.limit) == ["soc_min"])
        // It charges as fast as it can to get back above the minimum.
        #expect(plan.setpoints["b"] == [1, 1])
        #expect(plan.soc["b"] == [30, 40])
    }
}
