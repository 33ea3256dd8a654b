import EnchufeCore
import Foundation
import Synchronization

/// `market.interconnection`: per direction of a border, flow, capacity and utilisation, and the
/// day-ahead price spread across it, from the flows, capacities and prices the pull nodes bring.
struct InterconnectionNode: TransformNode {
    enum Key {
        static let fromZone = OptionKey<String>("from_zone", default: "ES", doc: "One side of the border (the spread is its price minus the other's).")
        static let toZone = OptionKey<String>("to_zone", default: "FR", doc: "The other side.")
        static let capacity = OptionKey<String>(
            "capacity", .enumeration(["ntc", "offered_capacity"]), default: "ntc",
            doc: "Which capacity utilisation is measured against: `ntc` (A61) or `offered_capacity` (A31).")
        static let fromPrice = OptionKey<String?>("from_price", doc: "The price series of `from_zone` (default `entsoe:FROM`; `omie:ES` for OMIE's).", example: "omie:ES")
        static let toPrice = OptionKey<String?>("to_price", doc: "The price series of `to_zone` (default `entsoe:TO`).")
        static let netFlow = OptionKey<String?>(
            "net_flow", doc: "A series of net exchange across the border (REData's `intercambios`, quantity `net_flow_quantity`) used instead of ENTSO-E's physical flows.",
            example: "ree:10207")
        static let netFlowQuantity = OptionKey<String>("net_flow_quantity", default: "interchange", doc: "The quantity of `net_flow`.")
        static let netFlowPositive = OptionKey<String>(
            "net_flow_positive", .enumeration(["export", "import"]), default: "export",
            doc: "Whether a positive `net_flow` goes from `from_zone` to `to_zone` (`export`) or the other way.")
        static let keep = OptionKey<Duration>("keep", default: .seconds(3 * 86_400), doc: "How long the inputs seen stay in memory (beyond, they are read from the store).")
    }

    static let spec = NodeSpec(
        type: "market.interconnection", kind: .transform,
        summary: "Per direction of a border (ES→FR, FR→ES): flow, capacity, utilisation % and the day-ahead price spread, as readings",
        doc: """
            Wire the pulls of the border's flows, capacities and prices into it (and into the store).
            For every interval of a direction's flow — ENTSO-E's physical flow `entsoe:A>B` (`flow`), or
            the positive part of a `net_flow` series — it sends on series `interconnection:A>B`:
            `flow` and `capacity` (the interval's mean of `entsoe:A>B` `ntc` or `offered_capacity`) in
            MW and `utilisation` in % (flow / capacity; none when the capacity is zero); and for every
            interval of the finer of the two price series, `interconnection:FROM-TO` `spread`
            (EUR/MWh): the `from_zone` price minus the `to_zone` one (under market coupling the two
            separate only when the border is saturated). A value over an interval is the time-weighted
            mean of the readings covering it, and only when they cover all of it (an hourly capacity
            serves four quarter-hours; a quarter-hourly price makes an hour's mean from four).

            Each message it receives is joined with the inputs it has seen (kept for `keep`) and,
            for the rest, with what the store holds over the same time, so a pull arriving before
            another's readings are stored, or another flow's prices, still count. An interval some
            input is missing for is left out until it arrives. Only the view's readings go out
            (quality `computed`), ready for `store.readings` and `alert`.
            """,
        options: [
            Key.fromZone.spec, Key.toZone.spec, Key.capacity.spec, Key.fromPrice.spec, Key.toPrice.spec, Key.netFlow.spec,
            Key.netFlowQuantity.spec, Key.netFlowPositive.spec, Key.keep.spec,
        ],
        example: """
            - id: view
              type: market.interconnection
              from_zone: ES
              to_zone: FR
              capacity: ntc
              to: [store, saturated]
            """,
        check: { options in
            options[Key.fromZone] == options[Key.toZone] ? [OptionProblem(option: "to_zone", "must differ from `from_zone`")] : []
        },
        make: { context in .transform(InterconnectionNode(context.options)) })

    let view: InterconnectionView
    let keep: TimeInterval
    let seen = SeenInputs()

    init(_ o: NodeOptions) {
        let (a, b) = (o[Key.fromZone].uppercased(), o[Key.toZone].uppercased())
        let net = o[Key.netFlow].map { InterconnectionView.Input(series: $0, quantity: o[Key.netFlowQuantity]) }
        view = InterconnectionView(
            from: a, to: b, capacityQuantity: o[Key.capacity],
            prices: (
                InterconnectionView.Input(series: o[Key.fromPrice] ?? "entsoe:\(a)", quantity: "price"),
                InterconnectionView.Input(series: o[Key.toPrice] ?? "entsoe:\(b)", quantity: "price")),
            netFlow: net, netFlowExports: o[Key.netFlowPositive] == "export")
        keep = o[Key.keep].seconds
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let inputs = view.inputs
        let arrived = message.readings.filter { inputs.contains(InterconnectionView.Input(series: $0.series, quantity: $0.quantity)) }
        guard let first = arrived.map(\.ts).min(), let last = arrived.map(\.end).max() else { return [] }
        // The hours around the arrivals, so that an hourly capacity or price covering them is found.
        let (from, to) = (first.addingTimeInterval(-86_400), last.addingTimeInterval(86_400))
        var known = InterconnectionView.Readings()
        for (quantity, series) in Dictionary(grouping: inputs, by: \.quantity) {
            let query = ReadingQuery(tenant: context.tenant, series: series.map(\.series), quantity: quantity, from: from, to: to)
            for try await page in context.store.readingPages(query) {
                for stored in page { known.add(stored.reading) }
            }
        }
        for r in seen.remember(arrived, keep: keep, within: from..<to) { known.add(r) }
        let source = context.readingSource
        let out = view.readings(known, over: first..<last).map { r in
            var r = r
            r.tenant = context.tenant
            r.source = source
            return r
        }
        return out.isEmpty ? [] : [.out(Message(readings: out))]
    }

    /// The inputs this node has seen, newest first over `keep`: those a store write may not have
    /// committed yet when the next input arrives.
    final class SeenInputs: Sendable {
        private let readings = Mutex<[ReadingKey: Reading]>([:])

        /// Remembers `arrived`, forgets what is older than `keep` before the newest, and returns what
        /// it holds within `range` (the arrivals included).
        func remember(_ arrived: [Reading], keep: TimeInterval, within range: Range<Date>) -> [Reading] {
            readings.withLock { held in
                for r in arrived { held[ReadingKey(r)] = r }
                if let newest = held.values.map(\.ts).max() {
                    let horizon = newest.addingTimeInterval(-keep)
                    held = held.filter { $0.value.ts >= horizon }
                }
                return held.values.filter { range.contains($0.ts) }
            }
        }
    }
}

/// What an interconnection view is computed from and how (pure, so it is tested apart from flows).
struct InterconnectionView: Sendable {
    struct Input: Hashable, Sendable {
        var series: String
        var quantity: String
    }

    /// Readings by input, each input's in time order once `sorted` is asked.
    struct Readings {
        var by: [Input: [Date: Reading]] = [:]

        mutating func add(_ r: Reading) { by[Input(series: r.series, quantity: r.quantity), default: [:]][r.ts] = r }

        func sorted(_ input: Input) -> [Reading] { (by[input] ?? [:]).values.sorted { $0.ts < $1.ts } }
    }

    let from: String
    let to: String
    let capacityQuantity: String
    let prices: (Input, Input)
    let netFlow: Input?
    let netFlowExports: Bool

    func border(_ a: String, _ b: String) -> String { "entsoe:\(a)>\(b)" }

    var inputs: Set<Input> {
        var all: Set<Input> = [prices.0, prices.1]
        for (a, b) in [(from, to), (to, from)] {
            all.insert(Input(series: border(a, b), quantity: capacityQuantity))
            if netFlow == nil { all.insert(Input(series: border(a, b), quantity: "flow")) }
        }
        if let netFlow { all.insert(netFlow) }
        return all
    }

    /// The view's readings for the intervals that start in `range`.
    func readings(_ known: Readings, over range: Range<Date>) -> [Reading] {
        var out: [Reading] = []
        for (a, b) in [(from, to), (to, from)] {
            let capacity = known.sorted(Input(series: border(a, b), quantity: capacityQuantity))
            let series = "interconnection:\(a)>\(b)"
            for flow in flows(a, b, known) where range.contains(flow.ts) {
                guard let cap = Self.mean(capacity, over: flow.ts..<flow.end) else { continue }
                func reading(_ quantity: String, _ value: Double, _ unit: String) -> Reading {
                    Reading(series: series, quantity: quantity, ts: flow.ts, resolution: flow.resolution, value: value, unit: unit, quality: .computed)
                }
                out.append(reading("flow", flow.value, "MW"))
                out.append(reading("capacity", cap, "MW"))
                if cap > 0 { out.append(reading("utilisation", flow.value / cap * 100, "%")) }
            }
        }
        let (mine, theirs) = (known.sorted(prices.0), known.sorted(prices.1))
        // The spread on the finer grid of the two (the `from` side's on a tie).
        let finer = Self.step(theirs) < Self.step(mine)
        for p in finer ? theirs : mine where range.contains(p.ts) {
            guard let other = Self.mean(finer ? mine : theirs, over: p.ts..<p.end) else { continue }
            let spread = finer ? other - p.value : p.value - other
            out.append(Reading(
                series: "interconnection:\(from)-\(to)", quantity: "spread", ts: p.ts, resolution: p.resolution, value: spread,
                unit: p.unit.isEmpty ? "EUR/MWh" : p.unit, quality: .computed))
        }
        return out
    }

    /// A direction's flows: ENTSO-E's physical flow, or the part of the net flow going that way.
    func flows(_ a: String, _ b: String, _ known: Readings) -> [Reading] {
        guard let netFlow else { return known.sorted(Input(series: border(a, b), quantity: "flow")) }
        let outward = (a == from) == netFlowExports
        return known.sorted(netFlow).map { r in
            var r = r
            r.value = max(0, outward ? r.value : -r.value)
            return r
        }
    }

    /// The shortest interval among readings (infinity for none).
    static func step(_ readings: [Reading]) -> TimeInterval {
        readings.map { $0.end.timeIntervalSince($0.ts) }.min() ?? .infinity
    }

    /// The time-weighted mean of the readings over `interval`, if they cover all of it.
    static func mean(_ readings: [Reading], over interval: Range<Date>) -> Double? {
        var covered = 0.0, sum = 0.0
        for r in readings where r.ts < interval.upperBound && r.end > interval.lowerBound {
            let overlap = min(r.end, interval.upperBound).timeIntervalSince(max(r.ts, interval.lowerBound))
            covered += overlap
            sum += r.value * overlap
        }
        let length = interval.upperBound.timeIntervalSince(interval.lowerBound)
        guard length > 0, abs(covered - length) < 0.001 else { return nil }
        return sum / covered
    }
}
