import Foundation
import Synchronization

/// `tariff.periods`: tags each reading with its access-tariff period.
struct TariffPeriodsNode: TransformNode {
    enum Key {
        static let tariff = OptionKey<String?>("tariff", doc: "`2.0TD`, `3.0TD`, `6.1TD`...`6.4TD`, `3.0TDVE`, `6.1TDVE`; default: the supply's.", example: "2.0TD")
        static let zone = OptionKey<String?>("zone", .enumeration(TariffZone.allCases.map(\.rawValue)), doc: "Default: the supply's, else `peninsula`.")
        static let holidays = OptionKey<[String]>("holidays", default: [], doc: "Extra all-valley dates (`YYYY-MM-DD`), should the rule change.", example: "[\"2027-04-02\"]")
    }

    static let spec = NodeSpec(
        type: "tariff.periods", kind: .transform,
        summary: "Tags each reading with its 2.0TD / 3.0TD / 6.xTD period (Circular CNMC 3/2020) by zone and holiday calendar",
        doc: """
            Every reading of an hour or less (`PT15M`, `PT1H`, an instant) gets the tags `period`
            (energy: P1–P3 for 2.0TD, P1–P6 for six-period tariffs) and `power_period` (P1–P2 for
            2.0TD; the same as `period` otherwise), for the hour its interval starts in, in the zone's
            local time (Canarias in Canary time). Weekends, 1 and 6 January, 1 May, 15 August,
            12 October, 1 November, 6, 8 and 25 December are all-valley days (P3 / P6); Good Friday
            is not. When all readings of a message share one period, the message also gets the
            attribute `period`. Longer readings (`P1D`, `P1M`) pass untagged.

            `tariff` and `zone` default to the supply registered for the reading's series (its CUPS:
            `PUT /api/v1/supplies/{cups}`, `datadis.supplies`), valid on the reading's day (`valid_from`..`valid_to`, both included); the zone
            defaults to `peninsula`. A reading with neither a `tariff` option nor a supply goes to the
            `errors` port naming its series.
            """,
        options: [
            Key.tariff.spec,
            Key.zone.spec,
            Key.holidays.spec,
        ],
        example: """
            - id: periods
              type: tariff.periods
              tariff: 2.0TD
              zone: canarias
              to: [store]
            """,
        check: { options in
            var problems: [OptionProblem] = []
            if let t = options[Key.tariff], TariffCalendar.Tariff(t) == nil {
                problems.append(OptionProblem(option: "tariff", "'\(t)' is not an access tariff: write 2.0TD, 3.0TD, 6.1TD, 6.2TD, 6.3TD, 6.4TD, 3.0TDVE or 6.1TDVE"))
            }
            for (i, d) in options[Key.holidays].enumerated() where LocalDay(d) == nil {
                problems.append(OptionProblem(option: "holidays.\(i)", "'\(d)' is not a date (YYYY-MM-DD)"))
            }
            return problems
        },
        make: { context in .transform(TariffPeriodsNode(context.options)) })

    let tariff: (name: String, tariff: TariffCalendar.Tariff)?
    let zone: TariffZone?
    let calendar: TariffCalendar
    let supplies = SupplyDirectory()

    init(_ o: NodeOptions) {
        tariff = o[Key.tariff].flatMap { name in TariffCalendar.Tariff(name).map { (name, $0) } }
        zone = o[Key.zone].flatMap(TariffZone.init(rawValue:))
        calendar = TariffCalendar(extraHolidays: o[Key.holidays].compactMap { LocalDay($0) })
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var out = message
        var periods: Set<String> = []
        for i in out.readings.indices {
            let r = out.readings[i]
            guard Self.isHourOrLess(r.resolution) else { continue }
            let (tariff, zone) = try await terms(for: r, context)
            let p = calendar.periods(tariff, zone: zone, at: r.ts)
            out.readings[i].tags["period"] = p.energy
            out.readings[i].tags["power_period"] = p.power
            periods.insert(p.energy)
        }
        if periods.count == 1 { out.attributes["period"] = periods.first! }
        return [.out(out)]
    }

    private func terms(for r: Reading, _ context: NodeContext) async throws -> (TariffCalendar.Tariff, TariffZone) {
        if let tariff, let zone { return (tariff.tariff, zone) }
        let supply = try await supplies.supply(r.series, on: LocalDay(containing: r.ts, in: (zone ?? .peninsula).timeZone), context)
        let zone = zone ?? supply?.zone.flatMap(TariffZone.init(named:)) ?? .peninsula
        if let tariff { return (tariff.tariff, zone) }
        guard let supply else {
            throw PermanentError("tariff.periods: no tariff for series '\(r.series)': give the node a 'tariff' or register the supply (PUT /api/v1/supplies/\(r.series))")
        }
        guard let name = supply.tariff, let t = TariffCalendar.Tariff(name) else {
            throw PermanentError("tariff.periods: the supply \(r.series) has tariff '\(supply.tariff ?? "none")', not one of 2.0TD, 3.0TD, 6.xTD")
        }
        return (t, zone)
    }

    /// `PT15M`, `PT1H`, `PT30M`, `PT0S`: intervals inside one hour.
    static func isHourOrLess(_ resolution: String) -> Bool {
        guard let seconds = ISODuration.seconds(resolution) else { return false }
        return seconds <= 3600
    }
}

/// The tenant's supplies by CUPS, read from the store at most every 30 seconds (a message rate
/// of thousands must not mean thousands of store reads), and after a second for a CUPS not known.
final class SupplyDirectory: Sendable {
    private struct State {
        var read: Date = .distantPast
        var byCUPS: [String: [SupplyPoint]] = [:]
    }

    private let state = Mutex(State())

    /// The supply of `cups` valid on `day`, if registered.
    func supply(_ cups: String, on day: LocalDay, _ context: NodeContext) async throws -> SupplyPoint? {
        let now = context.clock.now()
        let (age, known) = state.withLock { s in (now.timeIntervalSince(s.read), s.byCUPS[cups]) }
        var candidates = known
        if age >= 30 || (known == nil && age >= 1) {
            let all = try await context.store.supplies(tenant: context.tenant)
            let grouped = Dictionary(grouping: all, by: \.cups)
            state.withLock { s in
                s.read = now
                s.byCUPS = grouped
            }
            candidates = grouped[cups]
        }
        let text = day.description
        return candidates?.first { s in
            (s.validFrom.map { $0 <= text } ?? true) && (s.validTo.map { text <= $0 } ?? true)
        }
    }
}
