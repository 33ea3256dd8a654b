import Foundation

/// Per supply and tariff period: the energies a bill needs, and how complete the curve is
/// (`GET /api/v1/billing/periods`).
public struct BillingPeriods: Sendable {
    public struct Period: Sendable, Equatable {
        public var consumption = 0.0
        public var surplus = 0.0
        public var selfConsumption = 0.0
        /// Hours with consumption, and those of them with an estimated (or forecast) value.
        public var hours = 0
        public var estimatedHours = 0
    }

    public struct Supply: Sendable {
        public var cups: String
        public var tariff: String?
        public var zone: TariffZone
        public var hoursPresent = 0
        /// Hours between `from` and `to` in the zone's local time (23 and 25 on DST days).
        public var hoursExpected = 0
        public var periods: [String: Period] = [:]
        /// Why periods could not be given (no tariff registered).
        public var problem: String?
    }

    static let quantities: Set<String> = ["consumption", "surplus", "self_consumption", "generation"]

    /// The totals of `supply` from `from` to `to` (local days of its zone, `to` excluded): hourly or
    /// shorter readings of consumption, surplus and self-consumption, each in the period of the
    /// hour it starts in under the supply record valid that day. An hour with `generation` but no
    /// `self_consumption` reading (a meter behind the panels, the simulator) self-consumed what it
    /// generated and did not feed in.
    public static func supply(
        _ cups: String, records: [SupplyPoint], from: LocalDay, to: LocalDay, store: any Store, tenant: String, calendar: TariffCalendar = TariffCalendar()
    ) async throws -> Supply {
        let first = records.first { $0.validFrom.map { $0 <= from.description } ?? true } ?? records.first
        let zone = first?.zone.flatMap(TariffZone.init(named:)) ?? .peninsula
        let tz = zone.timeZone
        var result = Supply(cups: cups, tariff: first?.tariff, zone: zone)
        let start = from.start(in: tz), end = to.start(in: tz)
        result.hoursExpected = Int((end.timeIntervalSince(start) / 3600).rounded())
        func record(on day: LocalDay) -> SupplyPoint? {
            let text = day.description
            return records.first { ($0.validFrom.map { $0 <= text } ?? true) && ($0.validTo.map { text <= $0 } ?? true) } ?? first
        }
        guard let name = first?.tariff, let tariff = TariffCalendar.Tariff(name) else {
            result.problem = "no access tariff registered for \(cups) (PUT /api/v1/supplies/\(cups) with \"tariff\")"
            return result
        }
        for period in TariffCalendar.energyPeriods(tariff) { result.periods[period] = Period() }
        var hourSeen: [Date: (period: String, estimated: Bool)] = [:]
        var produced: [Date: (period: String, generation: Double, surplus: Double, measured: Bool)] = [:]
        for try await page in store.readingPages(ReadingQuery(tenant: tenant, series: [cups], from: start, to: end)) {
            for stored in page {
                let r = stored.reading
                guard quantities.contains(r.quantity), let seconds = ISODuration.seconds(r.resolution), seconds > 0, seconds <= 3600 else { continue }
                let hour = Date(timeIntervalSince1970: (r.ts.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
                let day = LocalDay(containing: r.ts, in: tz)
                let dayTariff = record(on: day)?.tariff.flatMap(TariffCalendar.Tariff.init) ?? tariff
                let period = calendar.periods(dayTariff, zone: zone, at: r.ts).energy
                let kWh = energy(r)
                switch r.quantity {
                case "consumption":
                    result.periods[period, default: Period()].consumption += kWh
                    let estimated = r.quality == .estimated || r.quality == .forecast
                    let seen = hourSeen[hour]
                    hourSeen[hour] = (period, (seen?.estimated ?? false) || estimated)
                case "surplus":
                    result.periods[period, default: Period()].surplus += kWh
                    produced[hour, default: (period, 0, 0, false)].surplus += kWh
                case "generation": produced[hour, default: (period, 0, 0, false)].generation += kWh
                default:
                    result.periods[period, default: Period()].selfConsumption += kWh
                    produced[hour, default: (period, 0, 0, false)].measured = true
                }
            }
        }
        for (_, hour) in produced where !hour.measured && hour.generation > 0 {
            result.periods[hour.period, default: Period()].selfConsumption += max(0, hour.generation - hour.surplus)
        }
        for (_, hour) in hourSeen {
            result.periods[hour.period, default: Period()].hours += 1
            if hour.estimated { result.periods[hour.period, default: Period()].estimatedHours += 1 }
        }
        result.hoursPresent = hourSeen.count
        return result
    }

    /// kWh of an energy reading in kWh, Wh or MWh.
    static func energy(_ r: Reading) -> Double {
        switch r.unit.lowercased() {
        case "wh": r.value / 1000
        case "mwh": r.value * 1000
        default: r.value
        }
    }

    public static func json(_ s: Supply) -> JSONValue {
        var o: [String: JSONValue] = [
            "cups": .string(s.cups), "tariff": s.tariff.map(JSONValue.string) ?? .null, "zone": .string(s.zone.rawValue),
            "hours_present": .number(Double(s.hoursPresent)), "hours_expected": .number(Double(s.hoursExpected)),
        ]
        var periods: [String: JSONValue] = [:]
        for (name, p) in s.periods {
            periods[name] = .object([
                "consumption": .number(rounded(p.consumption)), "surplus": .number(rounded(p.surplus)),
                "self_consumption": .number(rounded(p.selfConsumption)),
                "hours": .number(Double(p.hours)), "estimated_hours": .number(Double(p.estimatedHours)),
            ])
        }
        o["periods"] = .object(periods)
        if let problem = s.problem { o["problem"] = .string(problem) }
        return .object(o)
    }

    /// To the watt-hour, so that sums of many readings do not show float noise.
    static func rounded(_ kWh: Double) -> Double { (kWh * 1000).rounded() / 1000 }
}
