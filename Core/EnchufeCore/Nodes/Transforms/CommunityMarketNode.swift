import Foundation

/// `community.market`: the members' surpluses after the physical sharing sold to the members with
/// deficits at an internal price, per interval (Energy/CommunityMarket.swift).
struct CommunityMarketNode: TransformNode {
    enum Key {
        static let community = RequiredOptionKey<String>("community", doc: "The community whose members trade.", example: "solar-roof")
        static let rule = OptionKey<String>(
            "rule", default: "pro_rata",
            doc: "`pro_rata` (everyone trades the same fraction of its surplus or deficit) or `priority` (members' `market.ask`/`market.bid` on their supply records: cheapest asks and highest bids first; orders beyond the price stay out).")
        static let pricing = OptionKey<String>(
            "pricing", default: "midpoint",
            doc: "`midpoint` of the retail price and the surplus compensation price, `fixed` (`price`), or `expression` (`price_expression`).")
        static let price = OptionKey<Double?>("price", doc: "With `pricing: fixed`: the internal price, EUR/kWh.", example: 0.11)
        static let priceExpression = OptionKey<String?>(
            "price_expression", .expression,
            doc: "With `pricing: expression`: a Lua expression of `item.retail` and `item.compensation` (EUR/kWh, nil when unknown), `item.offered` and `item.demanded` (kWh) giving the price in EUR/kWh.",
            example: "item.compensation + 0.6 * (item.retail - item.compensation)")
        static let retail = OptionKey<String>("retail", default: "esios:1001:8741", doc: "The retail price series (PVPC 2.0TD of the Peninsula, ESIOS 1001).")
        static let compensation = OptionKey<String>(
            "compensation", default: "esios:1739:3", doc: "The surplus compensation price series (ESIOS 1739).")
        static let surplus = OptionKey<String>(
            "surplus", default: "surplus", doc: "The quantity of a member's surplus (`surplus` after `community.balance`; a supply's own `surplus` with individual PV).")
        static let deficit = OptionKey<String>(
            "deficit", default: "deficit", doc: "The quantity of a member's deficit (`deficit` after `community.balance`; `consumption` for what a supply imports).")
    }

    static let spec = NodeSpec(
        type: "community.market", kind: .transform,
        summary: "Per interval: members' surpluses sold to members with deficits at an internal price; bought, sold, value, grid import/export and savings per member and for the community",
        doc: """
            Takes what `community.balance` sends (each member's `surplus` and `deficit` per
            interval; other quantities with `surplus` and `deficit`, such as a supply's own
            `surplus` and `consumption` with individual PV) and clears the community's internal market interval by interval: surplus
            offered, deficits demanded, traded at one internal price by `rule` — `pro_rata`, or
            `priority` by the members' standing orders (`market: {bid, ask}` in EUR/kWh on
            `PUT /api/v1/supplies/{cups}`). What is not traded goes to (surplus) or comes from
            (deficit) the grid. Energy bought equals energy sold and money paid equals money
            received in every interval.

            The price (EUR/kWh) is `pricing`: `midpoint` of the retail price (`retail`, ESIOS 1001)
            and the surplus compensation price (`compensation`, ESIOS 1739), `fixed` (`price`), or
            the Lua `price_expression`. Prices come from the message or the store, in EUR/MWh or
            EUR/kWh (by their unit); an hourly price serves its four quarter-hours. An interval
            without a price is not cleared (attribute `market_unpriced`); a member without a
            surplus or deficit reading for an interval does not trade in it (attribute
            `market_missing`).

            Out go the input readings and, per member and interval, `market_bought`,
            `market_sold`, `market_grid_import`, `market_grid_export` (kWh), `market_value` (EUR
            received minus paid) and, when both retail and compensation prices are known,
            `market_savings` (EUR: what buying at the internal price saved against the retail
            price plus what selling earned over the compensation price); for the community
            (series `community:{community}`): `market_traded`, `market_grid_import`,
            `market_grid_export` (kWh), `market_price` (EUR/kWh) and `market_savings`. Monthly
            statements: `GET /api/v1/communities/{id}/settlement?month=YYYY-MM`.
            """,
        options: [
            Key.community.spec, Key.rule.spec, Key.pricing.spec, Key.price.spec, Key.priceExpression.spec, Key.retail.spec, Key.compensation.spec, Key.surplus.spec,
            Key.deficit.spec,
        ] + LuaLimits.optionSpecs,
        example: """
            - id: market
              type: community.market
              community: solar-roof
              rule: pro_rata
              pricing: midpoint
              to: [store]
            """,
        check: { o in
            var problems: [OptionProblem] = []
            if CommunityMarket.Rule(rawValue: o[Key.rule]) == nil { problems.append(OptionProblem(option: "rule", "must be pro_rata or priority")) }
            switch o[Key.pricing] {
            case "midpoint": break
            case "fixed":
                if o[Key.price] == nil { problems.append(OptionProblem(option: "price", "pricing: fixed needs `price` (EUR/kWh)")) }
            case "expression":
                if !o.has(Key.priceExpression) { problems.append(OptionProblem(option: "price_expression", "pricing: expression needs `price_expression`")) }
            default: problems.append(OptionProblem(option: "pricing", "must be midpoint, fixed or expression"))
            }
            return problems
        },
        make: { context in .transform(try CommunityMarketNode(context.options)) })

    enum Pricing {
        case midpoint, fixed(Double), expression(BoundTemplate)
    }

    let community: String
    let market: CommunityMarket
    let pricing: Pricing
    let retail: String
    let compensation: String
    let surplusQuantity: String
    let deficitQuantity: String

    init(_ o: NodeOptions) throws {
        community = try o.required(Key.community)
        guard let rule = CommunityMarket.Rule(rawValue: o[Key.rule]) else { throw PermanentError("community.market: rule must be pro_rata or priority") }
        market = CommunityMarket(rule: rule)
        switch o[Key.pricing] {
        case "fixed":
            guard let price = o[Key.price] else { throw PermanentError("community.market: pricing: fixed needs `price`") }
            pricing = .fixed(price)
        case "expression":
            guard let source = LuaSource.option(Key.priceExpression.name, in: o) else {
                throw PermanentError("community.market: pricing: expression needs `price_expression`")
            }
            pricing = .expression(try NodeExpressions(limits: LuaLimits(options: o)).condition(source))
        default:
            pricing = .midpoint
        }
        retail = o[Key.retail]
        compensation = o[Key.compensation]
        surplusQuantity = o[Key.surplus]
        deficitQuantity = o[Key.deficit]
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let found = try await CommunityMembers.required(community, by: Self.spec.type, context)
        let (supplies, members) = (found.supplies, found.cups)
        let orders = Dictionary(supplies.map { ($0.cups, $0.market) }, uniquingKeysWith: { a, b in b ?? a })
        let memberSet = Set(members)
        var positions: [ReadingInterval: [String: (surplus: Double?, deficit: Double?, unit: String)]] = [:]
        var retailPrices = PriceSeries(), compensationPrices = PriceSeries()
        for r in message.readings {
            if memberSet.contains(r.series) && (r.quantity == surplusQuantity || r.quantity == deficitQuantity) {
                var p = positions[ReadingInterval(r), default: [:]][r.series] ?? (nil, nil, r.unit)
                if r.quantity == surplusQuantity { p.surplus = r.value } else { p.deficit = r.value }
                positions[ReadingInterval(r), default: [:]][r.series] = p
            }
            if r.quantity == "price" && r.series == retail { retailPrices.add(r) }
            if r.quantity == "price" && r.series == compensation { compensationPrices.add(r) }
        }
        var out = message
        guard let first = positions.keys.map(\.ts).min(), let last = positions.keys.map(\.ts).max() else { return [.out(out)] }
        // Prices not in the message come from the store (a day's PVPC pulled earlier).
        let query = ReadingQuery(tenant: context.tenant, series: [retail, compensation], quantity: "price", from: first.addingTimeInterval(-3600), to: last.addingTimeInterval(3600))
        for try await page in context.store.readingPages(query) {
            for s in page where s.reading.quality != .forecast {
                if s.reading.series == retail, !retailPrices.has(s.reading.ts) { retailPrices.add(s.reading) }
                if s.reading.series == compensation, !compensationPrices.has(s.reading.ts) { compensationPrices.add(s.reading) }
            }
        }
        var missing = 0, unpriced = 0
        for interval in positions.keys.sorted(by: { $0.ts < $1.ts }) {
            let here = positions[interval]!
            let known = members.compactMap { cups -> CommunityMarket.Member? in
                guard let p = here[cups], p.surplus != nil || p.deficit != nil else { return nil }
                return CommunityMarket.Member(cups: cups, surplus: p.surplus ?? 0, deficit: p.deficit ?? 0, order: orders[cups] ?? nil)
            }
            missing += members.count - known.count
            let retailPrice = retailPrices.at(interval.ts), compensationPrice = compensationPrices.at(interval.ts)
            let offered = known.reduce(0) { $0 + $1.surplus }, demanded = known.reduce(0) { $0 + $1.deficit }
            guard let price = try price(retail: retailPrice, compensation: compensationPrice, offered: offered, demanded: demanded, message) else {
                unpriced += 1
                continue
            }
            let clearing = market.clear(known, price: price)
            let unit = here.values.first?.unit ?? "kWh"
            func reading(_ series: String, _ quantity: String, _ value: Double, _ unit: String) -> Reading {
                Reading(
                    tenant: context.tenant, series: series, quantity: quantity, ts: interval.ts, resolution: interval.resolution,
                    value: value, unit: unit, quality: .computed, source: context.readingSource)
            }
            func savings(_ r: CommunityMarket.Result) -> Double? {
                guard let retailPrice, let compensationPrice else { return nil }
                return r.bought * (retailPrice - price) + r.sold * (price - compensationPrice)
            }
            var totalSavings = 0.0
            for r in clearing.members {
                out.readings += [
                    reading(r.cups, "market_bought", r.bought, unit), reading(r.cups, "market_sold", r.sold, unit),
                    reading(r.cups, "market_grid_import", r.gridImport, unit), reading(r.cups, "market_grid_export", r.gridExport, unit),
                    reading(r.cups, "market_value", r.value, "EUR"),
                ]
                if let s = savings(r) {
                    out.readings.append(reading(r.cups, "market_savings", s, "EUR"))
                    totalSavings += s
                }
            }
            let series = "community:\(community)"
            out.readings += [
                reading(series, "market_traded", clearing.traded, unit), reading(series, "market_price", price, "EUR/kWh"),
                reading(series, "market_grid_import", clearing.members.reduce(0) { $0 + $1.gridImport }, unit),
                reading(series, "market_grid_export", clearing.members.reduce(0) { $0 + $1.gridExport }, unit),
            ]
            if retailPrice != nil && compensationPrice != nil { out.readings.append(reading(series, "market_savings", totalSavings, "EUR")) }
        }
        if missing > 0 { out.attributes["market_missing"] = String(missing) }
        if unpriced > 0 { out.attributes["market_unpriced"] = String(unpriced) }
        return [.out(out)]
    }

    func price(retail: Double?, compensation: Double?, offered: Double, demanded: Double, _ message: Message) throws -> Double? {
        switch pricing {
        case .fixed(let p): return p
        case .midpoint:
            guard let retail, let compensation else { return nil }
            return (retail + compensation) / 2
        case .expression(let template):
            let item: JSONValue = .object([
                "retail": retail.map(JSONValue.number) ?? .null, "compensation": compensation.map(JSONValue.number) ?? .null,
                "offered": .number(offered), "demanded": .number(demanded),
            ])
            let value = try template.value(for: message, item: item)
            if value.isNull { return nil }
            guard let p = value.doubleValue, p.isFinite else {
                throw PermanentError("community.market: price_expression gave \(value.jsonText()), not a number")
            }
            return p
        }
    }
}
