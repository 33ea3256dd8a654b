import EnchufeCore
import Foundation
import Synchronization

/// `simulate.community`: a source of realistic readings for N households, one interval per tick.
/// Its position (the next interval and the batteries' charge) is checkpointed only once the readings
/// before it are committed, so a restarted hub resumes without gaps.
struct SimulateCommunityNode: SourceNode {
    static let resolutions = ["PT5M", "PT15M", "PT30M", "PT1H"]

    enum Key {
        static let households = OptionKey<Int>("households", default: 20, doc: "Number of households.")
        static let every = OptionKey<Duration>("every", default: .seconds(1), doc: "Wall-clock time between ticks (0s: as fast as the flow takes them).")
        static let resolution = OptionKey<String>("resolution", .enumeration(resolutions), default: "PT15M", doc: "Length of each simulated interval.")
        static let seed = OptionKey<Int>("seed", default: 1, doc: "Seed of every random choice; the same seed gives the same community.")
        static let latitude = OptionKey<Double>("latitude", default: 40.4, doc: "Latitude of the community, for the sun's path.")
        static let longitude = OptionKey<Double>("longitude", default: -3.7, doc: "Longitude of the community, for solar time.")
        static let start = OptionKey<String?>("start", doc: "First simulated instant, ISO-8601 date or date-time (default: now, aligned to the resolution).", example: "2026-03-28")
        static let count = OptionKey<Int?>("count", doc: "Stop after this many intervals (default: never).")
        static let pvShare = OptionKey<Double>("pv_share", default: 0.6, doc: "Share of households with PV panels (0 to 1).")
        static let batteryShare = OptionKey<Double>("battery_share", default: 0.3, doc: "Share of households with a battery (0 to 1; only households with PV have one).")
        static let evShare = OptionKey<Double>("ev_share", default: 0.2, doc: "Share of households with an EV charging at night (0 to 1).")
        static let community = OptionKey<String?>("community", doc: "Register the households as supplies of this community at start (unless registered already).")
    }

    static let spec = NodeSpec(
        type: "simulate.community", kind: .source,
        summary: "Generates realistic readings for N households (PV, consumption, batteries, EVs), deterministic from a seed",
        doc: """
            Each tick emits one message with the readings of every household for one interval, then
            moves simulated time on by `resolution`: with the defaults, a day of 15-minute data every 96
            seconds. Series are CUPS codes with valid control letters. Quantities: `consumption` (kWh
            from the grid), `surplus` (kWh fed in) and `generation` (kWh of PV) for households with
            panels, and `soc` (%, instantaneous) for those with batteries. Values depend only on the
            seed, the household and the interval, so a replayed interval gives the same readings.
            After a restart it resumes from the last interval whose readings were committed.

            With `community`, the households are registered at start as supplies of that community
            (2.0TD, peninsula, 5.75 kW contracted with PV or an EV, else 4.6 kW): what
            `GET /api/v1/billing/periods`, `community.balance` and `coefficients` read. Supplies
            already registered are left as they are.
            """,
        options: [
            Key.households.spec,
            Key.every.spec,
            Key.resolution.spec,
            Key.seed.spec,
            Key.latitude.spec,
            Key.longitude.spec,
            Key.start.spec,
            Key.count.spec,
            Key.pvShare.spec,
            Key.batteryShare.spec,
            Key.evShare.spec,
            Key.community.spec,
        ],
        example: """
            - id: households
              type: simulate.community
              households: 20
              every: 1s
              resolution: PT15M
              seed: 7
              to: [store]
            """,
        check: { options in
            var problems: [OptionProblem] = []
            if !(1...100_000).contains(options[Key.households]) {
                problems.append(OptionProblem(option: "households", "must be between 1 and 100000"))
            }
            if let start = options[Key.start], ISO8601.date(start) == nil {
                problems.append(OptionProblem(option: "start", "'\(start)' is not an ISO-8601 date or date-time"))
            }
            for share in [Key.pvShare, Key.batteryShare, Key.evShare] where !(0...1).contains(options[share]) {
                problems.append(OptionProblem(option: share.name, "must be between 0 and 1"))
            }
            return problems
        },
        make: { context in .source(SimulateCommunityNode(context.options)) })

    let model: CommunityModel
    let every: Duration
    let resolution: String
    let step: Double
    let start: Date?
    let count: Int?
    let community: String?

    init(_ options: NodeOptions) {
        model = CommunityModel(
            seed: UInt64(truncatingIfNeeded: options[Key.seed]), households: options[Key.households],
            latitude: options[Key.latitude], longitude: options[Key.longitude],
            pvShare: options[Key.pvShare], batteryShare: options[Key.batteryShare],
            evShare: options[Key.evShare])
        every = options[Key.every]
        resolution = options[Key.resolution]
        step = ["PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600][resolution] ?? 900
        start = options[Key.start].flatMap(ISO8601.date)
        count = options[Key.count]
        community = options[Key.community]
    }

    /// Registers the households not yet registered as supplies of `community`.
    func registerSupplies(of community: String, _ context: NodeContext) async throws {
        let known = Set(try await context.store.supplies(tenant: context.tenant).map(\.cups))
        var added = 0
        for household in model.households where !known.contains(household.cups) {
            let power = household.pvKWp > 0 || household.hasEV ? 5.75 : 4.6
            try await context.store.saveSupply(SupplyPoint(
                tenant: context.tenant, cups: household.cups, tariff: "2.0TD", zone: TariffZone.peninsula.rawValue,
                contractedPowerKW: [power, power], community: community))
            added += 1
        }
        if added > 0 { context.logger.info("registered \(added) households as supplies of community '\(community)'") }
    }

    /// Where the simulation stands: the next interval to emit and the batteries' charge.
    struct Position: Sendable, Equatable {
        var next: Date
        var soc: [Double]
        var emitted: Int

        func checkpoint(identity: String) -> String {
            JSONValue.object([
                "identity": .string(identity), "next": .string(ISO8601.string(next)),
                "soc": .array(soc.map(JSONValue.number)), "emitted": .number(Double(emitted)),
            ]).jsonText()
        }

        init(next: Date, soc: [Double], emitted: Int) {
            self.next = next
            self.soc = soc
            self.emitted = emitted
        }

        init?(checkpoint: String, identity: String) {
            guard let json = try? JSONValue.parse(checkpoint), json["identity"]?.stringValue == identity,
                let next = json["next"]?.stringValue.flatMap(ISO8601.date)
            else { return nil }
            self.init(next: next, soc: json["soc"]?.arrayValue?.compactMap(\.doubleValue) ?? [], emitted: json["emitted"]?.intValue ?? 0)
        }
    }

    /// What identifies one simulation: a checkpoint of another one is not resumed.
    var identity: String {
        "seed=\(model.seed);households=\(model.households.count);resolution=\(resolution);start=\(start.map(ISO8601.string) ?? "now")"
    }

    func run(_ context: SourceContext) async throws {
        if let community { try await registerSupplies(of: community, context.node) }
        let progress = Progress()
        var position: Position
        if let saved = try await context.node.checkpoint("position"), let resumed = Position(checkpoint: saved, identity: identity) {
            position = resumed
            context.logger.info("resuming the simulation at \(ISO8601.string(resumed.next))")
        } else {
            let first = start ?? Date(timeIntervalSince1970: (context.clock.now().timeIntervalSince1970 / step).rounded(.down) * step)
            position = Position(next: first, soc: [], emitted: 0)
        }
        progress.commit(position)
        var saved = position
        do {
            while count.map({ position.emitted < $0 }) ?? true {
                let message = message(for: &position)
                let delivery = try await context.emit(message)
                progress.track(delivery, position: position)
                if let committed = progress.committed, committed != saved {
                    try await context.node.saveCheckpoint("position", committed.checkpoint(identity: identity))
                    saved = committed
                }
                if every > .zero { try await context.clock.sleep(for: every) } else { await Task.yield() }
            }
        } catch {
            await saveFinalPosition(progress, after: saved, context)
            throw error
        }
        await saveFinalPosition(progress, after: saved, context)
    }

    /// Waits for what is in flight to settle and records how far the committed readings go. It runs
    /// in a task of its own because the source's task is being cancelled when the flow stops.
    private func saveFinalPosition(_ progress: Progress, after saved: Position, _ context: SourceContext) async {
        let node = context.node
        let identity = self.identity
        await Task {
            if let final = await progress.settle(), final != saved {
                do {
                    try await node.saveCheckpoint("position", final.checkpoint(identity: identity))
                } catch {
                    node.logger.error("could not save the simulation's position: \(error)")
                }
            }
        }.value
    }

    /// The readings of the interval at `position.next`, moving the position on by one interval.
    func message(for position: inout Position) -> Message {
        let ts = position.next
        let intervals = model.step(start: ts, seconds: step, soc: &position.soc)
        var readings: [Reading] = []
        readings.reserveCapacity(intervals.count * 4)
        var totals = (consumption: 0.0, generation: 0.0, surplus: 0.0)
        for (h, e) in zip(model.households, intervals) {
            readings.append(Reading(series: h.cups, quantity: "consumption", ts: ts, resolution: resolution, value: e.importKWh, unit: "kWh"))
            totals.consumption += e.importKWh
            if h.pvKWp > 0 {
                readings.append(Reading(series: h.cups, quantity: "surplus", ts: ts, resolution: resolution, value: e.exportKWh, unit: "kWh"))
                readings.append(Reading(series: h.cups, quantity: "generation", ts: ts, resolution: resolution, value: e.generationKWh, unit: "kWh"))
                totals.generation += e.generationKWh
                totals.surplus += e.exportKWh
            }
            if let soc = e.socPercent {
                readings.append(Reading(series: h.cups, quantity: "soc", ts: ts.addingTimeInterval(step), resolution: "PT0S", value: soc, unit: "%"))
            }
        }
        position.next = ts.addingTimeInterval(step)
        position.emitted += 1
        let payload: JSONValue = [
            "interval": .string(ISO8601.string(ts)), "households": .number(Double(model.households.count)),
            "consumption_kwh": .number(totals.consumption.rounded(toPlaces: 3)),
            "generation_kwh": .number(totals.generation.rounded(toPlaces: 3)),
            "surplus_kwh": .number(totals.surplus.rounded(toPlaces: 3)),
        ]
        return Message(payload: payload, topic: "simulate/community", readings: readings)
    }
}

/// The simulation's committed position, advanced in emission order as deliveries are acknowledged.
/// A failed delivery freezes it there: the next run starts again from that interval.
private final class Progress: Sendable {
    private struct State {
        var window = AcknowledgementWindow<SimulateCommunityNode.Position>()
        var committed: SimulateCommunityNode.Position?
        var frozen = false
        var outstanding: [UInt64: Delivery] = [:]
    }

    private let state = Mutex(State())

    var committed: SimulateCommunityNode.Position? { state.withLock { $0.committed } }

    func commit(_ position: SimulateCommunityNode.Position) {
        state.withLock { $0.committed = position }
    }

    func track(_ delivery: Delivery, position: SimulateCommunityNode.Position) {
        let ticket = state.withLock { s -> UInt64? in
            guard !s.frozen else { return nil }
            let t = s.window.register(position)
            s.outstanding[t] = delivery
            return t
        }
        guard let ticket else { return }
        delivery.onSettled { [self] outcome in
            state.withLock { s in
                s.outstanding[ticket] = nil
                guard !s.frozen else { return }
                if outcome == .committed {
                    if let p = s.window.acknowledge(ticket) { s.committed = p }
                } else {
                    s.frozen = true
                }
            }
        }
    }

    /// Waits until every tracked delivery settled; returns the committed position.
    func settle() async -> SimulateCommunityNode.Position? {
        let pending = state.withLock { Array($0.outstanding.values) }
        for delivery in pending { _ = await delivery.outcome() }
        return committed
    }
}
