import Foundation

/// `price.cheapest_hours`: the N cheapest (or all negative-price) hours of a window → setpoints.
struct CheapestHoursNode: TransformNode {
    enum Key {
        static let count = OptionKey<Int>("count", default: 4, doc: "How many of the cheapest intervals.")
        static let negative = OptionKey<Bool>("negative", default: false, doc: "Every negative-price interval instead of the N cheapest.")
        static let resolution = OptionKey<String>("resolution", .enumeration(["PT1H", "PT15M"]), default: "PT1H", doc: "Pick hours or quarter-hours.")
        static let fromHour = OptionKey<Int>("from_hour", default: 0, doc: "First local hour of the window (0–23).")
        static let toHour = OptionKey<Int>("to_hour", default: 24, doc: "Local hour the window ends at (1–24, excluded).")
        static let timezone = OptionKey<String>("timezone", .timezone, default: "Europe/Madrid", doc: "Local time of the window.")
        static let series = OptionKey<String?>("series", doc: "Only this price series (e.g. `esios:1001:8741`).")
        static let action = OptionKey<String>("action", default: "charge", doc: "The `action` the setpoints carry.")
        static let topic = OptionKey<String?>("topic", doc: "The messages' topic.")
    }

    static let spec = NodeSpec(
        type: "price.cheapest_hours", kind: .transform,
        summary: "Picks the N cheapest or the negative-price hours of a window from price readings and emits one setpoint message per hour",
        doc: """
            Takes the `price` readings of a message (e.g. from `redata.prices` or `esios`; only
            series `series` if given), as hours (`resolution: PT1H`, the default: quarter-hourly
            prices, as published since October 2025, are averaged per hour, and an hour needs all
            its quarters) or as they come (`PT15M`), keeps those whose local start hour (in
            `timezone`) is in `from_hour`..`to_hour` (to excluded; a window over midnight, 22 → 6,
            works), and picks the `count` cheapest (ties: the earlier) or, with `negative: true`,
            every interval whose price is below zero.

            For each interval picked, in time order, one message goes out:
            `{"start", "end", "price", "unit", "rank", "action"}` (UTC instants; rank 1 is the
            cheapest), with the topic `topic` if given, ready for `mqtt.out` (e.g. a battery's
            charge command with `payload: "{payload.action}"`). No interval picked: nothing goes out.
            """,
        options: [
            Key.count.spec,
            Key.negative.spec,
            Key.resolution.spec,
            Key.fromHour.spec,
            Key.toHour.spec,
            Key.timezone.spec,
            Key.series.spec,
            Key.action.spec,
            Key.topic.spec,
        ],
        example: """
            - id: cheap-hours
              type: price.cheapest_hours
              count: 3
              from_hour: 0
              to_hour: 8
              topic: site/battery/set
              to: [battery]
            """,
        check: { options in
            var problems: [OptionProblem] = []
            if options[Key.count] < 1 { problems.append(OptionProblem(option: "count", "must be 1 or more")) }
            if !(0...23).contains(options[Key.fromHour]) { problems.append(OptionProblem(option: "from_hour", "must be 0–23")) }
            if !(1...24).contains(options[Key.toHour]) { problems.append(OptionProblem(option: "to_hour", "must be 1–24")) }
            return problems
        },
        make: { context in .transform(CheapestHoursNode(context.options)) })

    let count: Int
    let negative: Bool
    let seconds: Int
    let fromHour: Int
    let toHour: Int
    let zone: TimeZone
    let series: String?
    let action: String
    let topic: String?

    init(_ o: NodeOptions) {
        count = o[Key.count]
        negative = o[Key.negative]
        seconds = o[Key.resolution] == "PT15M" ? 900 : 3600
        fromHour = o[Key.fromHour]
        toHour = o[Key.toHour]
        zone = TimeZone(identifier: o[Key.timezone]) ?? LocalDay.madrid
        series = o[Key.series]
        action = o[Key.action]
        topic = o[Key.topic]
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        // Price per interval start: the mean of the interval's parts, only when it has them all.
        var parts: [Date: [Reading]] = [:]
        for r in message.readings where r.quantity == "price" && (series == nil || r.series == series) {
            guard let own = ISODuration.seconds(r.resolution), own > 0, own <= seconds, seconds % own == 0 else { continue }
            let start = Date(timeIntervalSince1970: (r.ts.timeIntervalSince1970 / Double(seconds)).rounded(.down) * Double(seconds))
            parts[start, default: []].append(r)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var prices: [(start: Date, price: Double, unit: String)] = []
        for (start, rs) in parts {
            let own = ISODuration.seconds(rs[0].resolution) ?? seconds
            guard Set(rs.map(\.ts)).count == seconds / own else { continue }
            let hour = calendar.component(.hour, from: start)
            let inWindow = fromHour < toHour ? (hour >= fromHour && hour < toHour) : (hour >= fromHour || hour < toHour)
            guard inWindow else { continue }
            prices.append((start, rs.map(\.value).reduce(0, +) / Double(rs.count), rs[0].unit))
        }
        let ranked = prices.sorted { $0.price != $1.price ? $0.price < $1.price : $0.start < $1.start }
        let picked = negative ? ranked.filter { $0.price < 0 } : Array(ranked.prefix(count))
        let rank = Dictionary(uniqueKeysWithValues: ranked.enumerated().map { ($1.start, $0 + 1) })
        return picked.sorted { $0.start < $1.start }.map { p in
            var out = Message(payload: [
                "start": .string(ISO8601.string(p.start)), "end": .string(ISO8601.string(p.start.addingTimeInterval(Double(seconds)))),
                "price": .number(p.price), "unit": .string(p.unit), "rank": .number(Double(rank[p.start]!)), "action": .string(action),
            ])
            out.topic = topic ?? message.topic
            out.attributes = message.attributes
            return .out(out)
        }
    }
}
