import EnchufeCore
import Foundation

/// A site's (or community's) flexible assets over a horizon of equal intervals, the prices and the
/// forecasts: the cost-minimising plan as a mixed-integer program (`ScheduleProblem.plan`, solved
/// by GLPK), and the plan a simple rule would make (`baseline`) to compare it with.
///
/// The program, per interval t of Δ hours (energies in kWh):
///
/// - grid: import_t − export_t = load_t − (pv_t − curtailed_t) + Σ charge_bt − Σ discharge_bt +
///   Σ ev_vt + Σ deferrable_lt; import_t ≤ limit_t·Δ + over_t (the contracted power of the
///   interval's tariff period); export_t ≤ export limit·Δ;
/// - battery b: soc_bt = soc_b,t−1 + √η·charge_bt − discharge_bt/√η (η the round-trip
///   efficiency), charge ≤ P_charge·Δ, discharge ≤ P_discharge·Δ, soc_min·C − low_bt ≤ soc_bt ≤
///   soc_max·C + high_bt, and at the end soc ≥ the final state asked (the start's by default) −
///   short_b;
/// - EV charger v: ev_vt ≤ P_max·Δ while plugged in before the deadline, and with a minimum
///   power P_min·Δ·on_vt ≤ ev_vt ≤ P_max·Δ·on_vt (on_vt binary); Σ ev_vt + short_v ≥ the energy
///   needed, Σ ev_vt ≤ it;
/// - deferrable load l: one start among those that end within its window (binaries), or
///   missed_l = 1;
/// - minimise Σ buy_t·import_t − sell_t·export_t + penalty·(over + low + high + short + missed
///   energy, ten times that for `over`, since beyond the contracted power the breaker trips) +
///   10⁻⁵·battery throughput (no pointless cycling).
///
/// Every limit a plan might not meet has a slack with a penalty, so there is always a plan: what it
/// could not meet is listed in `violations` with by how much, never an "infeasible".
public struct ScheduleProblem: Sendable {
    public struct Battery: Sendable {
        public var id: String
        public var capacityKWh: Double
        public var chargeKW: Double
        public var dischargeKW: Double
        public var efficiency: Double
        public var socMin: Double
        public var socMax: Double
        public var socStart: Double
        public var socEnd: Double?

        public init(id: String, capacityKWh: Double, chargeKW: Double, dischargeKW: Double, efficiency: Double = 0.9, socMin: Double = 0.1, socMax: Double = 1, socStart: Double = 0.5, socEnd: Double? = nil) {
            self.id = id
            self.capacityKWh = capacityKWh
            self.chargeKW = chargeKW
            self.dischargeKW = dischargeKW
            self.efficiency = efficiency
            self.socMin = socMin
            self.socMax = socMax
            self.socStart = socStart
            self.socEnd = socEnd
        }
    }

    public struct Charger: Sendable {
        public var id: String
        public var energyKWh: Double
        public var minKW: Double
        public var maxKW: Double
        /// Plugged in from this interval (0: now); nil: not plugged in, charges nothing.
        public var from: Int?
        /// The energy is due by the start of this interval (the horizon's end by default).
        public var deadline: Int?

        public init(id: String, energyKWh: Double, minKW: Double = 0, maxKW: Double, from: Int? = 0, deadline: Int? = nil) {
            self.id = id
            self.energyKWh = energyKWh
            self.minKW = minKW
            self.maxKW = maxKW
            self.from = from
            self.deadline = deadline
        }
    }

    public struct DeferrableLoad: Sendable {
        public var id: String
        public var kw: Double
        /// How many intervals it runs, without a break.
        public var duration: Int
        public var earliest: Int
        /// It must have finished by the start of this interval.
        public var latest: Int

        public init(id: String, kw: Double, duration: Int, earliest: Int = 0, latest: Int) {
            self.id = id
            self.kw = kw
            self.duration = duration
            self.earliest = earliest
            self.latest = latest
        }
    }

    public var start: Date
    public var seconds: Int
    public var buy: [Double]
    public var sell: [Double]
    public var load: [Double]
    public var pv: [Double]
    /// kW per interval; nil: no limit.
    public var importLimitKW: [Double?]
    public var exportLimitKW: Double?
    public var batteries: [Battery] = []
    public var chargers: [Charger] = []
    public var loads: [DeferrableLoad] = []
    /// EUR per kWh of any limit not met (kWh below a battery's minimum, short of a car's need...).
    public var penalty: Double = 5

    public init(start: Date, seconds: Int, buy: [Double], sell: [Double], load: [Double], pv: [Double], importLimitKW: [Double?]? = nil, exportLimitKW: Double? = nil) {
        self.start = start
        self.seconds = seconds
        self.buy = buy
        self.sell = sell
        self.load = load
        self.pv = pv
        self.importLimitKW = importLimitKW ?? Array(repeating: nil, count: buy.count)
        self.exportLimitKW = exportLimitKW
    }

    public var count: Int { buy.count }
    var hours: Double { Double(seconds) / 3600 }

    public struct Violation: Sendable, Equatable {
        public var asset: String
        public var limit: String
        public var amount: Double
        public var unit: String
        public var detail: String

        public var json: JSONValue {
            ["asset": .string(asset), "limit": .string(limit), "amount": .number((amount * 1000).rounded() / 1000), "unit": .string(unit), "detail": .string(detail)]
        }
    }

    public struct Plan: Sendable {
        public var gridImport: [Double]
        public var gridExport: [Double]
        public var curtailed: [Double]
        /// kW per interval: a battery's charge (+) or discharge (−), a charger's or a load's power.
        public var setpoints: [String: [Double]]
        /// A battery's state of charge at the end of each interval, % of capacity.
        public var soc: [String: [Double]]
        /// Energy cost, EUR: bought minus sold (penalties not included).
        public var cost: Double
        public var violations: [Violation]
    }

    public func cost(gridImport: [Double], gridExport: [Double]) -> Double {
        (0..<count).reduce(0) { $0 + buy[$1] * gridImport[$1] - sell[$1] * gridExport[$1] }
    }

    /// The cost-minimising plan (`writingLP`: also the program, in CPLEX LP format, for `glpsol --lp`).
    public func plan(timeLimit: Duration = .seconds(10), writingLP path: String? = nil) throws -> Plan {
        let n = count, dt = hours
        var lp = LinearProgram()
        let imp = (0..<n).map { lp.variable("import\($0)", cost: buy[$0]) }
        let exp = (0..<n).map { lp.variable("export\($0)", upper: exportLimitKW.map { $0 * dt }, cost: -sell[$0]) }
        let cur = (0..<n).map { lp.variable("curtail\($0)", upper: max(0, pv[$0])) }
        // Beyond the contracted power the breaker trips: that weighs ten times any other limit.
        let over = (0..<n).map { t in importLimitKW[t] == nil ? nil : lp.variable("over\(t)", cost: 10 * penalty) }
        var balance: [[(LinearProgram.Variable, Double)]] = (0..<n).map { [(imp[$0], 1), (exp[$0], -1), (cur[$0], -1)] }

        struct BatteryVars { var charge, discharge, soc, low, high: [LinearProgram.Variable]; var short: LinearProgram.Variable }
        var batteryVars: [BatteryVars] = []
        for b in batteries {
            let root = max(0.01, min(1, b.efficiency)).squareRoot()
            let charge = (0..<n).map { lp.variable("\(b.id).charge\($0)", upper: b.chargeKW * dt, cost: 1e-5) }
            let discharge = (0..<n).map { lp.variable("\(b.id).discharge\($0)", upper: b.dischargeKW * dt, cost: 1e-5) }
            let soc = (0..<n).map { lp.variable("\(b.id).soc\($0)", upper: b.capacityKWh) }
            let low = (0..<n).map { lp.variable("\(b.id).low\($0)", cost: penalty) }
            let high = (0..<n).map { lp.variable("\(b.id).high\($0)", cost: penalty) }
            let short = lp.variable("\(b.id).short", cost: penalty)
            for t in 0..<n {
                var terms: [(LinearProgram.Variable, Double)] = [(soc[t], 1), (charge[t], -root), (discharge[t], 1 / root)]
                if t > 0 { terms.append((soc[t - 1], -1)) }
                lp.equal(terms, t == 0 ? b.socStart * b.capacityKWh : 0)
                lp.constrain([(soc[t], 1), (low[t], 1)], lower: b.socMin * b.capacityKWh)
                lp.constrain([(soc[t], 1), (high[t], -1)], upper: b.socMax * b.capacityKWh)
                balance[t] += [(charge[t], -1), (discharge[t], 1)]
            }
            if n > 0 { lp.constrain([(soc[n - 1], 1), (short, 1)], lower: min(b.socMax, b.socEnd ?? b.socStart) * b.capacityKWh) }
            batteryVars.append(BatteryVars(charge: charge, discharge: discharge, soc: soc, low: low, high: high, short: short))
        }

        var chargerVars: [[LinearProgram.Variable?]] = []
        var chargerShort: [LinearProgram.Variable?] = []
        for c in chargers {
            guard let from = c.from else {
                chargerVars.append(Array(repeating: nil, count: n))
                chargerShort.append(nil)
                continue
            }
            let deadline = min(n, c.deadline ?? n)
            var vars: [LinearProgram.Variable?] = Array(repeating: nil, count: n)
            for t in max(0, from)..<max(max(0, from), deadline) {
                let x = lp.variable("\(c.id).energy\(t)", upper: c.maxKW * dt)
                if c.minKW > 0 {
                    let on = lp.variable("\(c.id).on\(t)", kind: .binary)
                    lp.constrain([(x, 1), (on, -c.maxKW * dt)], upper: 0)
                    lp.constrain([(x, 1), (on, -c.minKW * dt)], lower: 0)
                }
                vars[t] = x
                balance[t].append((x, -1))
            }
            let short = lp.variable("\(c.id).short", upper: c.energyKWh, cost: penalty)
            let delivered = vars.compactMap { $0 }.map { ($0, 1.0) }
            lp.constrain(delivered + [(short, 1)], lower: c.energyKWh)
            if !delivered.isEmpty { lp.constrain(delivered, upper: c.energyKWh) }
            chargerVars.append(vars)
            chargerShort.append(short)
        }

        var loadStarts: [[(Int, LinearProgram.Variable)]] = []
        var loadMissed: [LinearProgram.Variable] = []
        for l in loads {
            let energy = l.kw * Double(l.duration) * dt
            let missed = lp.variable("\(l.id).missed", upper: 1, cost: penalty * energy)
            var starts: [(Int, LinearProgram.Variable)] = []
            if l.duration > 0 {
                for k in max(0, l.earliest)..<max(max(0, l.earliest), min(n, l.latest) - l.duration + 1) {
                    let z = lp.variable("\(l.id).start\(k)", kind: .binary)
                    starts.append((k, z))
                    for t in k..<(k + l.duration) { balance[t].append((z, -l.kw * dt)) }
                }
            }
            lp.equal(starts.map { ($0.1, 1) } + [(missed, 1)], 1)
            loadStarts.append(starts)
            loadMissed.append(missed)
        }

        for t in 0..<n {
            lp.equal(balance[t], load[t] - pv[t])
            if let limit = importLimitKW[t], let o = over[t] { lp.constrain([(imp[t], 1), (o, -1)], upper: limit * dt) }
        }

        let s = try lp.solve(timeLimit: timeLimit, writingLP: path)
        let value = { (v: LinearProgram.Variable) in abs(s[v]) < 1e-9 ? 0 : s[v] }
        var setpoints: [String: [Double]] = [:], soc: [String: [Double]] = [:]
        var violations: [Violation] = []
        let overs = (0..<n).compactMap { t in over[t].map { value($0) } }.filter { $0 > 1e-6 }
        if !overs.isEmpty {
            violations.append(Violation(asset: "grid", limit: "import_kw", amount: overs.reduce(0, +), unit: "kWh", detail: "imports beyond the contracted power in \(overs.count) intervals"))
        }
        for (b, v) in zip(batteries, batteryVars) {
            setpoints[b.id] = (0..<n).map { (value(v.charge[$0]) - value(v.discharge[$0])) / dt }
            soc[b.id] = (0..<n).map { value(v.soc[$0]) / b.capacityKWh * 100 }
            let low = v.low.map(value).reduce(0, +), high = v.high.map(value).reduce(0, +)
            if low > 1e-6 { violations.append(Violation(asset: b.id, limit: "soc_min", amount: low, unit: "kWh·interval", detail: "below the minimum state of charge")) }
            if high > 1e-6 { violations.append(Violation(asset: b.id, limit: "soc_max", amount: high, unit: "kWh·interval", detail: "above the maximum state of charge")) }
            if value(v.short) > 1e-6 { violations.append(Violation(asset: b.id, limit: "soc_end", amount: value(v.short), unit: "kWh", detail: "short of the final state of charge")) }
        }
        for (i, c) in chargers.enumerated() {
            setpoints[c.id] = chargerVars[i].map { $0.map { value($0) / dt } ?? 0 }
            if let short = chargerShort[i], value(short) > 1e-6 {
                let hours = Double(max(0, min(n, c.deadline ?? n) - (c.from ?? n))) * dt
                violations.append(Violation(
                    asset: c.id, limit: "energy_kwh", amount: value(short), unit: "kWh",
                    detail: "\(fmt(c.energyKWh)) kWh needed, at most \(fmt(c.maxKW)) kW for \(fmt(hours)) h before the deadline"))
            }
        }
        for (i, l) in loads.enumerated() {
            var power = Array(repeating: 0.0, count: n)
            for (k, z) in loadStarts[i] where value(z) > 0.5 { for t in k..<(k + l.duration) { power[t] = l.kw } }
            setpoints[l.id] = power
            if value(loadMissed[i]) > 0.5 {
                violations.append(Violation(asset: l.id, limit: "window", amount: l.kw * Double(l.duration) * dt, unit: "kWh", detail: "does not fit its window"))
            }
        }
        let gridImport = imp.map(value), gridExport = exp.map(value)
        return Plan(
            gridImport: gridImport, gridExport: gridExport, curtailed: cur.map(value), setpoints: setpoints, soc: soc,
            cost: cost(gridImport: gridImport, gridExport: gridExport), violations: violations)
    }

    func fmt(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.2f", v) }

    /// The plan of a simple rule, as a home energy manager without prices runs it: cars charge at
    /// full power as soon as they are plugged in, loads run at their earliest, batteries charge
    /// from the PV surplus and discharge on a deficit, within their limits.
    public func baseline() -> Plan {
        let n = count, dt = hours
        var setpoints: [String: [Double]] = [:], socs: [String: [Double]] = [:]
        var demand = (0..<n).map { load[$0] - pv[$0] }
        for c in chargers {
            var power = Array(repeating: 0.0, count: n)
            var left = c.energyKWh
            if let from = c.from {
                for t in max(0, from)..<max(max(0, from), min(n, c.deadline ?? n)) where left > 1e-9 {
                    let e = min(left, c.maxKW * dt)
                    power[t] = e / dt
                    demand[t] += e
                    left -= e
                }
            }
            setpoints[c.id] = power
        }
        for l in loads {
            var power = Array(repeating: 0.0, count: n)
            for t in max(0, l.earliest)..<min(n, max(0, l.earliest) + l.duration) {
                power[t] = l.kw
                demand[t] += l.kw * dt
            }
            setpoints[l.id] = power
        }
        for b in batteries {
            let root = max(0.01, min(1, b.efficiency)).squareRoot()
            var e = b.socStart * b.capacityKWh
            var power = Array(repeating: 0.0, count: n), soc = Array(repeating: 0.0, count: n)
            for t in 0..<n {
                if demand[t] < 0 {
                    let stored = min(-demand[t], b.chargeKW * dt, max(0, (b.socMax * b.capacityKWh - e) / root))
                    e += stored * root
                    demand[t] += stored
                    power[t] = stored / dt
                } else if demand[t] > 0 {
                    let given = min(demand[t], b.dischargeKW * dt, max(0, (e - b.socMin * b.capacityKWh) * root))
                    e -= given / root
                    demand[t] -= given
                    power[t] = -given / dt
                }
                soc[t] = e / b.capacityKWh * 100
            }
            setpoints[b.id] = power
            socs[b.id] = soc
        }
        let gridImport = demand.map { max(0, $0) }
        let gridExport = demand.map { d in min(max(0, -d), exportLimitKW.map { $0 * dt } ?? .infinity) }
        let curtailed = (0..<n).map { max(0, -demand[$0]) - gridExport[$0] }
        return Plan(
            gridImport: gridImport, gridExport: gridExport, curtailed: curtailed, setpoints: setpoints, soc: socs,
            cost: cost(gridImport: gridImport, gridExport: gridExport), violations: [])
    }
}
