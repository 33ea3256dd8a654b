import Foundation

/// `aggregate`: community totals per interval, small groups suppressed.
struct AggregateNode: TransformNode {
    enum Key {
        static let minGroup = OptionKey<Int>("min_group", default: 5, doc: "Fewest members a total may have.")
        static let groupBy = OptionKey<String>("group_by", .enumeration(["none", "community"]), default: "none", doc: "One group, or one per community.")
        static let quantity = OptionKey<[String]?>("quantity", doc: "Only these quantities (default all).")
        static let series = OptionKey<String>("series", default: "community:{group}", doc: "The totals' series; `{group}` is the group's name.")
    }

    static let spec = NodeSpec(
        type: "aggregate", kind: .transform,
        summary: "Totals per interval over many series (a community's), suppressing groups smaller than min_group",
        doc: """
            The readings of a message are grouped by group, quantity, interval (`ts`) and
            resolution; each group becomes one reading of series `series` (a template over
            `{group}`), its value the sum of its members' (energy and power alike; averages of
            prices and temperatures are not totals, so give `quantity` to aggregate only some),
            quality the lowest of its parts, and the tag `members` with how many series it summed.
            A group with fewer than `min_group` distinct series is suppressed (so that no total
            reveals one household): its readings are dropped and counted in the message attribute
            `suppressed`.

            `group_by: community` groups each series by the `community` of its supply
            (`PUT /api/v1/supplies/{cups}`; series without one are left out); `none` (the default)
            makes one group, `all`.
            """,
        options: [
            Key.minGroup.spec,
            Key.groupBy.spec,
            Key.quantity.spec,
            Key.series.spec,
        ],
        example: """
            - id: totals
              type: aggregate
              group_by: community
              min_group: 5
              quantity: [consumption, surplus]
              to: [store]
            """,
        check: { options in
            if options[Key.minGroup] < 1 { return [OptionProblem(option: "min_group", "must be 1 or more")] }
            return []
        },
        make: { context in .transform(AggregateNode(context.options)) })

    let minGroup: Int
    let byCommunity: Bool
    let quantities: Set<String>?
    let series: String

    init(_ o: NodeOptions) {
        minGroup = o[Key.minGroup]
        byCommunity = o[Key.groupBy] == "community"
        quantities = o[Key.quantity].map(Set.init)
        series = o[Key.series]
    }

    struct GroupKey: Hashable {
        var group: String
        var quantity: String
        var ts: Date
        var resolution: String
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var communities: [String: String] = [:]
        if byCommunity {
            for s in try await context.store.supplies(tenant: context.tenant) {
                if let c = s.community { communities[s.cups] = c }
            }
        }
        var groups: [GroupKey: [Reading]] = [:]
        var order: [GroupKey] = []
        for r in message.readings where quantities?.contains(r.quantity) ?? true {
            let group = byCommunity ? communities[r.series] : "all"
            guard let group else { continue }
            let key = GroupKey(group: group, quantity: r.quantity, ts: r.ts, resolution: r.resolution)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        var out = message
        out.readings = []
        var suppressed = 0
        for key in order {
            let parts = groups[key]!
            let members = Set(parts.map(\.series)).count
            guard members >= minGroup else {
                suppressed += parts.count
                continue
            }
            var total = parts[0]
            total.series = series.replacingOccurrences(of: "{group}", with: key.group)
            total.value = parts.map(\.value).reduce(0, +)
            total.quality = parts.map(\.quality).min { $0.rank < $1.rank } ?? total.quality
            total.tags = ["members": String(members)]
            total.source = context.readingSource
            out.readings.append(total)
        }
        if suppressed > 0 { out.attributes["suppressed"] = String(suppressed) }
        return [.out(out)]
    }
}
