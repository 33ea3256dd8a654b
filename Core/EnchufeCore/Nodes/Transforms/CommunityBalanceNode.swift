import Foundation

/// `community.balance`: each member's share of the shared generation, per interval.
struct CommunityBalanceNode: TransformNode {
    enum Key {
        static let community = RequiredOptionKey<String>("community", doc: "The community: its member supplies share the generation.", example: "solar-roof")
        static let generation = RequiredOptionKey<String>("generation", doc: "The series of the shared installation's generation.", example: "device:pv-roof")
    }

    static let spec = NodeSpec(
        type: "community.balance", kind: .transform,
        summary: "Per hour: each member's generation share by coefficient, self-consumed, surplus and deficit, and the community's totals",
        doc: """
            For every interval of the message (readings grouped by `ts` and resolution, hourly or
            quarter-hourly) that holds the installation's `generation` (series `generation`) and the
            `consumption` of every member, each member i with coefficient β_i gets (RD 244/2019
            Anexo I, reference note §2.4):
            `generation_share` = β_i · generation, `self_consumption` = min(consumption, share),
            `surplus` = max(0, share − consumption) and `deficit` = max(0, consumption − share) (what
            the grid supplies); the community (series `community:{community}`) gets the totals of
            consumption, generation, self-consumption, surplus and deficit. All in the input's unit.
            Quality is `computed`, or the lowest of the inputs when one is estimated.

            Members are the tenant's supplies with `community` (`PUT /api/v1/supplies/{cups}`).
            Their coefficients are, in this order: the stored `coefficient` readings (those of the
            `coefficients` node: the hour's, else the year's static one), the supply's
            `coefficient`, else equal shares. An interval without generation or without a member's
            consumption is not balanced (absent is not zero): it is counted in the attribute
            `unbalanced`. The input readings go out too, followed by the balance.
            """,
        options: [
            Key.community.spec,
            Key.generation.spec,
        ],
        example: """
            - id: balance
              type: community.balance
              community: solar-roof
              generation: device:pv-roof
              to: [store]
            """,
        make: { context in .transform(try CommunityBalanceNode(context.options)) })

    let community: String
    let generation: String

    init(_ o: NodeOptions) throws {
        community = try o.required(Key.community)
        generation = try o.required(Key.generation)
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let found = try await CommunityMembers.required(community, by: Self.spec.type, context)
        let (supplies, members) = (found.supplies, found.cups)
        var generationBy: [ReadingInterval: Reading] = [:]
        var consumptionBy: [ReadingInterval: [String: Reading]] = [:]
        let memberSet = Set(members)
        for r in message.readings {
            let key = ReadingInterval(r)
            if r.series == generation && r.quantity == "generation" { generationBy[key] = r }
            if memberSet.contains(r.series) && r.quantity == "consumption" { consumptionBy[key, default: [:]][r.series] = r }
        }
        let intervals = Set(generationBy.keys).union(consumptionBy.keys).sorted { $0.ts < $1.ts }
        let betas = try await coefficients(members, supplies: supplies, at: intervals.map(\.ts), context)
        var out = message
        var unbalanced = 0
        for interval in intervals {
            guard let gen = generationBy[interval], let consumption = consumptionBy[interval], consumption.count == members.count else {
                unbalanced += 1
                continue
            }
            let inputs = [gen] + consumption.values
            let quality = inputs.contains { $0.quality == .estimated || $0.quality == .forecast } ? inputs.map(\.quality).min { $0.rank < $1.rank }! : .computed
            func reading(_ series: String, _ quantity: String, _ value: Double) -> Reading {
                Reading(
                    tenant: context.tenant, series: series, quantity: quantity, ts: interval.ts, resolution: interval.resolution,
                    value: value, unit: gen.unit, quality: quality, source: context.readingSource)
            }
            var totals = (consumption: 0.0, selfConsumed: 0.0, surplus: 0.0, deficit: 0.0)
            let set = betas(interval.ts)
            for (m, cups) in members.enumerated() {
                let c = consumption[cups]!.value
                let share = set[m] * gen.value
                let selfConsumed = min(c, share), surplus = max(0, share - c), deficit = max(0, c - share)
                out.readings += [
                    reading(cups, "generation_share", share), reading(cups, "self_consumption", selfConsumed),
                    reading(cups, "surplus", surplus), reading(cups, "deficit", deficit),
                ]
                totals = (totals.consumption + c, totals.selfConsumed + selfConsumed, totals.surplus + surplus, totals.deficit + deficit)
            }
            let series = "community:\(community)"
            out.readings += [
                reading(series, "consumption", totals.consumption), reading(series, "generation", gen.value),
                reading(series, "self_consumption", totals.selfConsumed), reading(series, "surplus", totals.surplus),
                reading(series, "deficit", totals.deficit),
            ]
        }
        if unbalanced > 0 { out.attributes["unbalanced"] = String(unbalanced) }
        return [.out(out)]
    }

    /// The members' coefficients (in `members` order) for an interval starting at a given time.
    func coefficients(_ members: [String], supplies: [SupplyPoint], at times: [Date], _ context: NodeContext) async throws -> (Date) -> [Double] {
        var hourly: [Date: [String: Double]] = [:]
        var yearly: [Int: [String: Double]] = [:]
        if let first = times.min(), let last = times.max() {
            let zone = LocalDay.madrid
            let yearStart = LocalDay(year: LocalDay(containing: first, in: zone).year, month: 1, day: 1).start(in: zone)
            let query = ReadingQuery(tenant: context.tenant, series: members, quantity: "coefficient", from: yearStart, to: last.addingTimeInterval(3600))
            for try await page in context.store.readingPages(query) {
                for s in page {
                    let r = s.reading
                    if r.resolution == "PT1H" { hourly[r.ts, default: [:]][r.series] = r.value }
                    if r.resolution == "P1Y" { yearly[LocalDay(containing: r.ts, in: zone).year, default: [:]][r.series] = r.value }
                }
            }
        }
        let fromSupplies = Dictionary(supplies.compactMap { s in s.coefficient.map { (s.cups, $0) } }) { a, _ in a }
        let equal = Array(repeating: 1 / Double(members.count), count: members.count)
        return { ts in
            let hour = Date(timeIntervalSince1970: (ts.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
            for set in [hourly[hour], yearly[LocalDay(containing: ts, in: LocalDay.madrid).year], fromSupplies] {
                if let set, members.allSatisfy({ set[$0] != nil }) { return members.map { set[$0]! } }
            }
            return equal
        }
    }
}
