import EnchufeCore
import Foundation
import Synchronization

/// `optimize.schedule`: a rolling cost-minimising plan for a site's batteries, EV chargers and
/// deferrable loads (`ScheduleProblem`, solved by GLPK), from prices and forecasts in the store.
struct OptimizeScheduleNode: TransformNode {
    enum Key {
        static let site = RequiredOptionKey<String>("site", doc: "The site (or community) planned: the plan's series are `SITE` and `SITE:ASSET`.", example: "home")
        static let hours = OptionKey<Int>("hours", default: 24, doc: "The horizon, from the current interval (1–48 hours).")
        static let resolution = OptionKey<String>("resolution", .enumeration(["PT15M", "PT1H"]), default: "PT1H", doc: "The plan's intervals.")
        static let price = OptionKey<String>("price", default: "esios:1001:8741", doc: "The series of the price paid for imports (quantity `price`, EUR/MWh or EUR/kWh).")
        static let exportPrice = OptionKey<String>("export_price", default: "esios:1739:3", doc: "The series of the price paid for exports (the surplus compensation price).")
        static let exportPriceValue = OptionKey<Double?>("export_price_value", doc: "A fixed export price, EUR/kWh, instead of `export_price`.")
        static let pricePeriods = OptionKey<JSONValue?>(
            "price_periods", .any, doc: "A fixed-price contract instead of `price`: EUR/kWh per energy period of `tariff` (P1, P2, P3 for 2.0TD).",
            example: ["P1": 0.24, "P2": 0.15, "P3": 0.09])
        static let consumption = OptionKey<String?>("consumption", doc: "The series of the site's own consumption (quantity `consumption`, kWh): forecasts, else readings.", example: "home")
        static let pv = OptionKey<String?>("pv", doc: "The series of its PV production (quantity `generation`, kWh): forecasts, else readings.", example: "home:pv")
        static let batteries = OptionKey<JSONValue?>(
            "batteries", .any,
            doc: "Batteries: `[{id, capacity_kwh, charge_kw, discharge_kw, efficiency (0.9 round trip), soc_min (10 %), soc_max (100 %), soc (%, 50), soc_series (the latest `soc` reading, %, overrides `soc`), soc_end (%, the start's)}]`.")
        static let chargers = OptionKey<JSONValue?>(
            "chargers", .any,
            doc: "EV chargers: `[{id, energy_kwh, max_kw, min_kw (0), plugged (true), from (HH:MM, now), deadline (HH:MM, the horizon's end)}]` — local times of Madrid, their next occurrence.")
        static let loads = OptionKey<JSONValue?>(
            "loads", .any, doc: "Deferrable loads: `[{id, kw, duration (2h), window (HH:MM-HH:MM, the horizon)}]`, run once without a break within the window.")
        static let importKW = OptionKey<JSONValue?>(
            "import_kw", .any, doc: "The contracted power, kW: a number, or a list by power period (P1, P2 for 2.0TD; P1..P6 otherwise).", example: [4.6, 4.6])
        static let tariff = OptionKey<String>("tariff", default: "2.0TD", doc: "The access tariff whose power periods `import_kw` follows.")
        static let exportKW = OptionKey<Double?>("export_kw", doc: "The most the site may export, kW.")
        static let penalty = OptionKey<Double>("penalty", default: 5, doc: "EUR per kWh of a limit not met (ten times that beyond the contracted power).")
        static let setpoints = OptionKey<JSONValue?>(
            "setpoints", .wires, doc: "Nodes fed with one message per asset and interval: `{site, asset, ts, kw, soc}` (`soc` for batteries), for `mqtt.out`.")
        static let model = OptionKey<String>("model", default: "optimize.schedule", doc: "The model name the plan is stored under.")
    }

    static let spec = NodeSpec(
        type: "optimize.schedule", kind: .transform,
        summary: "Plans batteries, EV chargers and deferrable loads for the next hours at least cost (an LP/MILP solved by GLPK), never infeasible: limits not met are reported",
        doc: """
            Each message it receives is a trigger (a schedule, new prices, new forecasts): it plans
            the `hours` from the current interval at `resolution`, and plans again only when its
            inputs changed. Inputs, per interval: the import `price` (or a fixed-price contract's
            `price_periods`) and the `export_price` (or `export_price_value`), the site's `consumption` and `pv` production — the latest issued
            forecasts (`store.forecasts`), else readings, else the same time the day before; the
            trigger's own readings count first. A price missing for some intervals keeps the one
            before; no price at all fails the message.

            The plan minimises the energy cost (imports at the price minus exports at the export
            price) under the assets' limits: batteries (`batteries`: capacity, charge and discharge
            power, round-trip efficiency, state-of-charge range, the current state from
            `soc_series`), EV chargers (`chargers`: the energy needed by a deadline, minimum and
            maximum power, plugged in or not), deferrable loads (`loads`: power, duration, window)
            and the contracted power (`import_kw`, per power period of `tariff`). Every limit is
            soft with a `penalty`, so there is always a plan; the ones it could not meet are
            listed with by how much (`violations`). The method is in docs/optimizer.md.

            Out on `to` go the plan's readings (quality `forecast`, tags `issued_at`, `model`, for
            `store.forecasts`): per asset `SITE:ASSET` `setpoint` (kW: a battery's charge +,
            discharge −) and, for batteries, `soc` (%); for the site `grid_import`, `grid_export`
            (kWh), `cost` and `baseline_cost` (EUR per interval: the plan's and that of a rule —
            charge from the PV surplus, discharge on a deficit, cars at full power once plugged,
            loads at their earliest). The message's attributes and the node's status (`details` in
            `/api/v1/flows`) give `expected_cost`, `baseline_cost` and the `violations`. On
            `setpoints` go the setpoint messages per asset and interval.
            """,
        options: [
            Key.site.spec, Key.hours.spec, Key.resolution.spec, Key.price.spec, Key.pricePeriods.spec, Key.exportPrice.spec, Key.exportPriceValue.spec, Key.consumption.spec,
            Key.pv.spec, Key.batteries.spec, Key.chargers.spec, Key.loads.spec, Key.importKW.spec, Key.tariff.spec, Key.exportKW.spec, Key.penalty.spec,
            Key.setpoints.spec, Key.model.spec,
        ],
        example: """
            - id: plan
              type: optimize.schedule
              site: home
              consumption: home
              pv: home:pv
              batteries: [{id: battery, capacity_kwh: 10, charge_kw: 5, discharge_kw: 5, soc_series: home:battery}]
              chargers: [{id: car, energy_kwh: 20, max_kw: 7.4, min_kw: 1.4, deadline: "07:30"}]
              import_kw: [4.6, 4.6]
              to: [plans]
            """,
        check: { o in
            do {
                _ = try Assets(o, start: Date(timeIntervalSince1970: 0), seconds: 3600, count: 24)
            } catch let problem as AssetProblem {
                return [OptionProblem(option: problem.option, problem.message)]
            } catch {
                return [OptionProblem(option: "batteries", "\(error)")]
            }
            var problems: [OptionProblem] = []
            if !(1...48).contains(o[Key.hours]) { problems.append(OptionProblem(option: "hours", "must be 1–48")) }
            if TariffCalendar.Tariff(o[Key.tariff]) == nil { problems.append(OptionProblem(option: "tariff", "is not an access tariff (2.0TD, 3.0TD, 6.1TD...)")) }
            if o[Key.penalty] <= 0 { problems.append(OptionProblem(option: "penalty", "must be above 0")) }
            if let value = o[Key.pricePeriods], !value.isNull, periodPrices(value) == nil {
                problems.append(OptionProblem(option: "price_periods", "must map periods to prices in EUR/kWh, e.g. {P1: 0.24, P2: 0.15, P3: 0.09}"))
            } else if let periods = periodPrices(o[Key.pricePeriods]), let tariff = TariffCalendar.Tariff(o[Key.tariff]) {
                let missing = TariffCalendar.energyPeriods(tariff).filter { periods[$0] == nil }
                if !missing.isEmpty { problems.append(OptionProblem(option: "price_periods", "needs a price for \(missing.joined(separator: ", "))")) }
            }
            return problems
        },
        make: { context in .transform(try OptimizeScheduleNode(context.options)) })

    let options: NodeOptions
    let site: String
    let hours: Int
    let seconds: Int
    let priceSeries: String
    let exportSeries: String
    let exportValue: Double?
    let pricePeriods: [String: Double]?
    let consumption: String?
    let pv: String?
    let tariff: TariffCalendar.Tariff
    let importKW: [Double]
    let exportKW: Double?
    let penalty: Double
    let model: String
    let calendar = TariffCalendar()
    /// What the last plan was made from: the same inputs are not planned again.
    final class LastInputs: Sendable {
        let value = Mutex<Int?>(nil)
    }
    let lastInputs = LastInputs()

    init(_ o: NodeOptions) throws {
        options = o
        site = try o.required(Key.site)
        hours = o[Key.hours]
        seconds = ISODuration.seconds(o[Key.resolution]) ?? 3600
        priceSeries = o[Key.price]
        exportSeries = o[Key.exportPrice]
        exportValue = o[Key.exportPriceValue]
        pricePeriods = Self.periodPrices(o[Key.pricePeriods])
        consumption = o[Key.consumption]
        pv = o[Key.pv]
        tariff = TariffCalendar.Tariff(o[Key.tariff]) ?? .twoPeriods
        let limit = o[Key.importKW]
        importKW = limit.flatMap { $0.doubleValue.map { [$0] } ?? $0.arrayValue?.compactMap(\.doubleValue) } ?? []
        exportKW = o[Key.exportKW]
        penalty = o[Key.penalty]
        model = o[Key.model]
        _ = try Assets(o, start: Date(timeIntervalSince1970: 0), seconds: 3600, count: 24)
    }

    /// `price_periods` as numbers by period name (nil when absent or not an object of numbers).
    static func periodPrices(_ value: JSONValue?) -> [String: Double]? {
        guard let fields = value?.objectValue else { return nil }
        let prices = fields.compactMapValues(\.doubleValue)
        return prices.count == fields.count ? prices : nil
    }

    struct AssetProblem: Error, CustomStringConvertible {
        var option: String
        var message: String
        init(option: String, _ message: String) {
            self.option = option
            self.message = message
        }
        var description: String { "\(option): \(message)" }
    }

    /// The assets of the options, placed on a horizon (local times to interval indices).
    struct Assets {
        var batteries: [ScheduleProblem.Battery] = []
        var socSeries: [String: String] = [:]
        var chargers: [ScheduleProblem.Charger] = []
        var loads: [ScheduleProblem.DeferrableLoad] = []

        init(_ o: NodeOptions, start: Date, seconds: Int, count: Int) throws {
            var ids = Set<String>()
            func list(_ key: OptionKey<JSONValue?>) throws -> [[String: JSONValue]] {
                guard let value = o[key], !value.isNull else { return [] }
                guard let items = value.arrayValue else { throw AssetProblem(option: key.name, "must be a list of objects") }
                return try items.enumerated().map { i, item in
                    guard let fields = item.objectValue else { throw AssetProblem(option: "\(key.name).\(i)", "must be an object") }
                    guard let id = fields["id"]?.stringValue, !id.isEmpty else { throw AssetProblem(option: "\(key.name).\(i).id", "is required") }
                    guard ids.insert(id).inserted else { throw AssetProblem(option: "\(key.name).\(i).id", "'\(id)' names two assets") }
                    return fields
                }
            }
            func number(_ f: [String: JSONValue], _ name: String, _ at: String, default value: Double? = nil, range: ClosedRange<Double> = 0...10_000) throws -> Double {
                guard let v = f[name], !v.isNull else {
                    if let value { return value }
                    throw AssetProblem(option: "\(at).\(name)", "is required")
                }
                guard let n = v.doubleValue, range.contains(n) else { throw AssetProblem(option: "\(at).\(name)", "must be a number from \(range.lowerBound) to \(range.upperBound)") }
                return n
            }
            let zone = LocalDay.madrid
            /// A local time HH:MM of Madrid.
            func clock(_ text: String, _ at: String) throws -> (hour: Int, minute: Int) {
                let parts = text.split(separator: ":")
                guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...23).contains(h), (0...59).contains(m) else {
                    throw AssetProblem(option: at, "must be a local time HH:MM")
                }
                return (h, m)
            }
            func instant(_ time: (hour: Int, minute: Int), on day: LocalDay) -> Date {
                LocalDay.calendar(zone).date(bySettingHour: time.hour, minute: time.minute, second: 0, of: day.start(in: zone)) ?? day.start(in: zone)
            }
            /// The next time `time` comes after `after`.
            func next(_ time: (hour: Int, minute: Int), after: Date) -> Date {
                let day = LocalDay(containing: after, in: zone)
                let today = instant(time, on: day)
                return today > after ? today : instant(time, on: day.adding(days: 1))
            }
            /// The last time `time` came before `before`.
            func last(_ time: (hour: Int, minute: Int), before: Date) -> Date {
                let day = LocalDay(containing: before, in: zone)
                let today = instant(time, on: day)
                return today < before ? today : instant(time, on: day.adding(days: -1))
            }
            /// A window of local times as interval indices: it ends at the next `until` (the
            /// horizon's end without one) and starts at the last `from` before that (now if that
            /// has passed); intervals only partly inside are left out.
            func window(from: String?, until: String?, fromOption: String, untilOption: String) throws -> (first: Int, end: Int) {
                let horizonEnd = start.addingTimeInterval(Double(count * seconds))
                let endTime = try until.map { next(try clock($0, untilOption), after: start) } ?? horizonEnd
                let startTime = try from.map { last(try clock($0, fromOption), before: endTime) } ?? start
                let first = max(0, Int((startTime.timeIntervalSince(start) / Double(seconds)).rounded(.up)))
                let end = min(count, Int((endTime.timeIntervalSince(start) / Double(seconds)).rounded(.down)))
                return (first, max(first, end))
            }
            for (i, f) in try list(Key.batteries).enumerated() {
                let at = "batteries.\(i)"
                let capacity = try number(f, "capacity_kwh", at, range: 0.001...100_000)
                let socMin = try number(f, "soc_min", at, default: 10, range: 0...100), socMax = try number(f, "soc_max", at, default: 100, range: 0...100)
                guard socMin <= socMax else { throw AssetProblem(option: "\(at).soc_min", "is above soc_max") }
                batteries.append(ScheduleProblem.Battery(
                    id: f["id"]!.stringValue!, capacityKWh: capacity, chargeKW: try number(f, "charge_kw", at), dischargeKW: try number(f, "discharge_kw", at),
                    efficiency: try number(f, "efficiency", at, default: 0.9, range: 0.01...1), socMin: socMin / 100, socMax: socMax / 100,
                    socStart: try number(f, "soc", at, default: 50, range: 0...100) / 100,
                    socEnd: try f["soc_end"].flatMap { $0.isNull ? nil : $0 }.map { _ in try number(f, "soc_end", at, range: 0...100) / 100 }))
                if let series = f["soc_series"]?.stringValue { socSeries[f["id"]!.stringValue!] = series }
            }
            for (i, f) in try list(Key.chargers).enumerated() {
                let at = "chargers.\(i)"
                let plugged = f["plugged"]?.boolValue ?? true
                let (from, deadline) = try window(from: f["from"]?.stringValue, until: f["deadline"]?.stringValue, fromOption: "\(at).from", untilOption: "\(at).deadline")
                let minKW = try number(f, "min_kw", at, default: 0), maxKW = try number(f, "max_kw", at)
                guard minKW <= maxKW else { throw AssetProblem(option: "\(at).min_kw", "is above max_kw") }
                chargers.append(ScheduleProblem.Charger(
                    id: f["id"]!.stringValue!, energyKWh: try number(f, "energy_kwh", at), minKW: minKW, maxKW: maxKW, from: plugged ? from : nil,
                    deadline: deadline))
            }
            for (i, f) in try list(Key.loads).enumerated() {
                let at = "loads.\(i)"
                guard let duration = try? DurationText.parse(f["duration"]?.stringValue ?? "2h"), duration.milliseconds >= 60_000 else {
                    throw AssetProblem(option: "\(at).duration", "must be a duration such as 90m or 2h")
                }
                var earliest = 0, latest = count
                if let text = f["window"]?.stringValue {
                    let ends = text.split(separator: "-").map(String.init)
                    guard ends.count == 2 else { throw AssetProblem(option: "\(at).window", "must be HH:MM-HH:MM") }
                    (earliest, latest) = try window(from: ends[0], until: ends[1], fromOption: "\(at).window", untilOption: "\(at).window")
                }
                loads.append(ScheduleProblem.DeferrableLoad(
                    id: f["id"]!.stringValue!, kw: try number(f, "kw", at), duration: Int((Double(duration.milliseconds) / 1000 / Double(seconds)).rounded(.up)),
                    earliest: earliest, latest: latest))
            }
        }
    }

    /// Energies of a series on the plan's intervals from records of any resolution, each split over
    /// the intervals it covers.
    static func onGrid(_ records: [Reading], start: Date, seconds: Int, count: Int) -> [Double?] {
        var out = [Double?](repeating: nil, count: count)
        let end = start.addingTimeInterval(Double(seconds * count))
        for r in records {
            let length = Double(ISODuration.seconds(r.resolution) ?? seconds)
            let rEnd = r.ts.addingTimeInterval(length)
            guard rEnd > start, r.ts < end else { continue }
            let first = max(0, Int((r.ts.timeIntervalSince(start) / Double(seconds)).rounded(.down)))
            let last = min(count - 1, Int((rEnd.timeIntervalSince(start) / Double(seconds)).rounded(.up)) - 1)
            guard first <= last else { continue }
            for t in first...last {
                let tStart = start.addingTimeInterval(Double(t * seconds))
                let overlap = min(rEnd, tStart.addingTimeInterval(Double(seconds))).timeIntervalSince(max(r.ts, tStart))
                if overlap > 0 { out[t] = (out[t] ?? 0) + r.value * overlap / length }
            }
        }
        return out
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let now = context.clock.now()
        let start = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / Double(seconds)).rounded(.down) * Double(seconds))
        let count = hours * 3600 / seconds
        let end = start.addingTimeInterval(Double(count * seconds))
        var assets = try Assets(options, start: start, seconds: seconds, count: count)
        var missing: [String: Int] = [:]

        /// A series on the plan's intervals: energies split over them, prices from the interval covering.
        func grid(_ records: [Reading], energy: Bool) -> [Double?] {
            if energy { return Self.onGrid(records, start: start, seconds: seconds, count: count) }
            let prices = PriceSeries(records)
            return (0..<count).map { prices.at(start.addingTimeInterval(Double($0 * seconds))) }
        }
        /// A series on the grid: the trigger's readings, the latest forecasts, readings, the day before.
        func series(_ name: String, _ quantity: String, energy: Bool) async throws -> [Double?] {
            let fromMessage = message.readings.filter { $0.series == name && $0.quantity == quantity }
            let forecasts = try await context.store.forecasts(ForecastQuery(tenant: context.tenant, series: [name], quantity: quantity, from: start.addingTimeInterval(-86_400), to: end, vintage: now))
                .map(\.reading)
            let readings = try await context.store.readings(ReadingQuery(tenant: context.tenant, series: [name], quantity: quantity, from: start.addingTimeInterval(-2 * 86_400), to: end))
                .map(\.reading).filter { $0.quality != .forecast }
            var values = grid(fromMessage, energy: energy)
            for source in [forecasts, readings] {
                let more = grid(source, energy: energy)
                for t in 0..<count where values[t] == nil { values[t] = more[t] }
            }
            let dayBefore = grid((readings + fromMessage).map { var r = $0; r.ts = r.ts.addingTimeInterval(86_400); return r }, energy: energy)
            for t in 0..<count where values[t] == nil { values[t] = dayBefore[t] }
            let gaps = values.filter { $0 == nil }.count
            if gaps > 0 { missing["\(name) \(quantity)"] = gaps }
            return values
        }
        func prices(_ name: String) async throws -> [Double] {
            let values = try await series(name, "price", energy: false)
            guard let first = values.compactMap({ $0 }).first else {
                throw PermanentError("optimize.schedule: no \(name) price for \(ISO8601.string(start))–\(ISO8601.string(end)) (neither forecast nor published)")
            }
            var last = first
            return values.map { v in
                if let v { last = v }
                return last
            }
        }
        let buy: [Double]
        if let pricePeriods {
            buy = try (0..<count).map { t in
                let period = calendar.periods(tariff, zone: .peninsula, at: start.addingTimeInterval(Double(t * seconds))).energy
                guard let price = pricePeriods[period] else { throw PermanentError("optimize.schedule: price_periods has no price for \(period)") }
                return price
            }
        } else {
            buy = try await prices(priceSeries)
        }
        let sell = if let exportValue { Array(repeating: exportValue, count: count) } else { try await prices(exportSeries) }
        let load = if let consumption { try await series(consumption, "consumption", energy: true).map { $0 ?? 0 } } else { Array(repeating: 0.0, count: count) }
        let production = if let pv { try await series(pv, "generation", energy: true).map { $0 ?? 0 } } else { Array(repeating: 0.0, count: count) }
        for (i, b) in assets.batteries.enumerated() {
            guard let name = assets.socSeries[b.id] else { continue }
            let latest = try await context.store.readings(ReadingQuery(tenant: context.tenant, series: [name], quantity: "soc", from: now.addingTimeInterval(-86_400), to: now.addingTimeInterval(1)))
                .map(\.reading) + message.readings.filter { $0.series == name && $0.quantity == "soc" }
            if let soc = latest.filter({ $0.quality != .forecast }).max(by: { $0.ts < $1.ts }) { assets.batteries[i].socStart = min(1, max(0, soc.value / 100)) }
        }
        let limits: [Double?] = (0..<count).map { t in
            guard !importKW.isEmpty else { return nil }
            if importKW.count == 1 { return importKW[0] }
            let period = calendar.periods(tariff, zone: .peninsula, at: start.addingTimeInterval(Double(t * seconds))).power
            return Int(period.dropFirst()).flatMap { $0 >= 1 && $0 <= importKW.count ? importKW[$0 - 1] : importKW.last }
        }
        var problem = ScheduleProblem(start: start, seconds: seconds, buy: buy, sell: sell, load: load, pv: production, importLimitKW: limits, exportLimitKW: exportKW)
        problem.batteries = assets.batteries
        problem.chargers = assets.chargers
        problem.loads = assets.loads
        problem.penalty = penalty

        var hasher = Hasher()
        hasher.combine(start)
        for v in buy + sell + load + production { hasher.combine(v) }
        for b in problem.batteries { hasher.combine(b.socStart) }
        let inputs = hasher.finalize()
        if lastInputs.value.withLock({ $0 == inputs }) { return [] }

        let clock = ContinuousClock(), began = clock.now
        let plan: ScheduleProblem.Plan
        do {
            plan = try problem.plan()
        } catch {
            throw PermanentError("optimize.schedule: \(error)")
        }
        let solved = clock.now - began
        let baseline = problem.baseline()
        lastInputs.value.withLock { $0 = inputs }

        let issued = ISO8601.string(now)
        let resolution = ISODuration.text(seconds: seconds)
        func reading(_ series: String, _ quantity: String, _ t: Int, _ value: Double, _ unit: String) -> Reading {
            Reading(
                tenant: context.tenant, series: series, quantity: quantity, ts: start.addingTimeInterval(Double(t * seconds)), resolution: resolution,
                value: (value * 1e6).rounded() / 1e6, unit: unit, quality: .forecast, source: context.readingSource,
                tags: ["issued_at": issued, "model": model])
        }
        var readings: [Reading] = []
        var setpoints: [Output] = []
        for t in 0..<count {
            readings += [
                reading(site, "grid_import", t, plan.gridImport[t], "kWh"), reading(site, "grid_export", t, plan.gridExport[t], "kWh"),
                reading(site, "cost", t, buy[t] * plan.gridImport[t] - sell[t] * plan.gridExport[t], "EUR"),
                reading(site, "baseline_cost", t, buy[t] * baseline.gridImport[t] - sell[t] * baseline.gridExport[t], "EUR"),
            ]
        }
        for asset in plan.setpoints.keys.sorted() {
            for (t, kw) in plan.setpoints[asset]!.enumerated() {
                readings.append(reading("\(site):\(asset)", "setpoint", t, kw, "kW"))
                var payload: [String: JSONValue] = [
                    "site": .string(site), "asset": .string(asset), "ts": .string(ISO8601.string(start.addingTimeInterval(Double(t * seconds)))),
                    "kw": .number((kw * 1000).rounded() / 1000),
                ]
                if let soc = plan.soc[asset]?[t] {
                    readings.append(reading("\(site):\(asset)", "soc", t, soc, "%"))
                    payload["soc"] = .number((soc * 10).rounded() / 10)
                }
                setpoints.append(Output(Message(payload: .object(payload)), port: Key.setpoints.name))
            }
        }
        let summary: JSONValue = [
            "from": .string(ISO8601.string(start)), "to": .string(ISO8601.string(end)), "intervals": .number(Double(count)),
            "expected_cost": .number((plan.cost * 1e4).rounded() / 1e4), "baseline_cost": .number((baseline.cost * 1e4).rounded() / 1e4),
            "violations": .array(plan.violations.map(\.json)), "solve_ms": .number((Double(solved.components.attoseconds) / 1e15 + Double(solved.components.seconds) * 1000).rounded()),
            "missing": .object(missing.mapValues { .number(Double($0)) }),
        ]
        context.status?.report(summary)
        if !plan.violations.isEmpty {
            context.logger.warning("optimize.schedule \(site): \(plan.violations.map { "\($0.asset) \($0.limit) \(String(format: "%.2f", $0.amount)) \($0.unit)" }.joined(separator: "; "))")
        }
        var out = Message(readings: readings)
        out.attributes["expected_cost"] = String(format: "%.4f", plan.cost)
        out.attributes["baseline_cost"] = String(format: "%.4f", baseline.cost)
        out.attributes["violations"] = JSONValue.array(plan.violations.map(\.json)).jsonText()
        return [.out(out)] + setpoints
    }
}
