import EnchufeCore
import Foundation
import HTTPPull

/// `entsoe`: prices, cross-border flows and capacities from the ENTSO-E Transparency Platform.
struct EntsoeNode: TransformNode {
    enum Key {
        static let token = OptionKey<Secret?>(
            "token", secret: true, doc: "The platform's security token (ask the Transparency Platform's helpdesk); never logged.",
            example: "${env:ENTSOE_TOKEN}")
        static let document = OptionKey<String>(
            "document", .enumeration(Document.allCases.map(\.rawValue)), default: Document.prices.rawValue,
            doc: "`prices` (A44 day-ahead), `flows` (A11 physical flows), `scheduled_exchanges` (A09), `ntc` (A61), `offered_capacity` (A31).")
        static let zone = OptionKey<String>("zone", default: "ES", doc: "The bidding zone of `prices`: ES, FR, PT or an EIC code.")
        static let fromZone = OptionKey<String>("from_zone", default: "ES", doc: "Where a flow or capacity goes out (ES, FR, PT or an EIC code).")
        static let toZone = OptionKey<String>("to_zone", default: "FR", doc: "Where it goes in.")
    }

    enum Document: String, CaseIterable {
        case prices, flows, scheduledExchanges = "scheduled_exchanges", ntc, offeredCapacity = "offered_capacity"

        var code: String {
            switch self {
            case .prices: "A44"
            case .flows: "A11"
            case .scheduledExchanges: "A09"
            case .ntc: "A61"
            case .offeredCapacity: "A31"
            }
        }

        /// The quantity its readings have.
        var quantity: String {
            switch self {
            case .prices: "price"
            case .flows: "flow"
            case .scheduledExchanges: "scheduled_exchange"
            case .ntc: "ntc"
            case .offeredCapacity: "offered_capacity"
            }
        }
    }

    /// The zones known by name, with their EIC codes.
    static let zones = ["ES": "10YES-REE------0", "FR": "10YFR-RTE------C", "PT": "10YPT-REN------W"]

    /// A zone's EIC code: a known name's, or the code itself (16 characters).
    static func eic(_ zone: String) -> String? {
        if let code = zones[zone.uppercased()] { return code }
        return zone.count == 16 ? zone : nil
    }

    static let spec = NodeSpec(
        type: "entsoe", kind: .transform,
        summary: "Pulls day-ahead prices, cross-border flows and transfer capacities from the ENTSO-E Transparency Platform",
        doc: """
            Each message it receives is a trigger. For each day of the window it asks `{base_url}/api`
            for the `document` over the Madrid day (`periodStart`/`periodEnd` in UTC), with `token` as
            the `securityToken` parameter (a secret: never in a log line, an error or the status).
            Prices: series `entsoe:ZONE`, quantity `price`, EUR/MWh, the day-ahead (contract type A01)
            series only. Flows and capacities: series `entsoe:FROM>TO`, quantities `flow`,
            `scheduled_exchange`, `ntc` or `offered_capacity`, MW. Each point keeps the resolution its
            period has (PT15M, PT30M, PT60M stored as PT1H); in curves of type A03 a position left out
            repeats the previous value. An acknowledgement (the platform's "no data", with HTTP 200)
            stores nothing and the day is asked again at the next trigger. The platform allows 400
            requests a minute per token and bans a token for about 10 minutes beyond that: the default
            rate is far below it, and a 429 is not retried — the pull stops and the next trigger goes on.
            """,
        options: [Key.token.spec, Key.document.spec, Key.zone.spec, Key.fromZone.spec, Key.toZone.spec] + PullNodeOptions.entsoe.specs,
        example: """
            - id: spot
              type: entsoe
              token: ${env:ENTSOE_TOKEN}
              document: prices
              zone: ES
              day: tomorrow
              to: [store]
            """,
        check: { options in
            var problems = DayWindow.problems(options)
            for key in [Key.zone, Key.fromZone, Key.toZone] where eic(options[key]) == nil {
                problems.append(OptionProblem(option: key.name, "'\(options[key])' is neither ES, FR, PT nor a 16-character EIC code"))
            }
            return problems
        },
        make: { build in .transform(try EntsoeNode(build)) })

    let client: PullClient
    let base: String
    let token: Secret?
    let document: Document
    let series: String
    let domains: (into: String, outOf: String)
    let window: DayWindow
    let maxRequests: Int

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        token = try build.credential(Key.token, missing: "needs an ENTSO-E token: set `token` (e.g. token: ${env:ENTSOE_TOKEN})")
        // A ban lasts about ten minutes: asking again within one pull only prolongs it.
        client = PullNodeOptions.entsoe.client(build, type: "entsoe", retriesRateLimits: false)
        base = PullNodeOptions.entsoe.base(o)
        document = Document(rawValue: o[Key.document]) ?? .prices
        let name = { (zone: String) in Self.zones[zone.uppercased()] != nil ? zone.uppercased() : zone }
        if document == .prices {
            let zone = o[Key.zone]
            series = "entsoe:\(name(zone))"
            domains = (Self.eic(zone) ?? zone, Self.eic(zone) ?? zone)
        } else {
            let (from, to) = (o[Key.fromZone], o[Key.toZone])
            series = "entsoe:\(name(from))>\(name(to))"
            domains = (Self.eic(to) ?? to, Self.eic(from) ?? from)
        }
        window = DayWindow(options: o)
        maxRequests = o[PullNodeOptions.entsoe.maxRequests]
    }

    /// `yyyyMMddHHmm` in UTC.
    static func parameter(_ date: Date) -> String {
        let c = LocalDay.calendar(.gmt).dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return String(format: "%04d%02d%02d%02d%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!)
    }

    func url(_ day: LocalDay) throws -> URL {
        var query = [
            ("securityToken", token?.reveal() ?? ""), ("documentType", document.code),
            ("in_Domain", domains.into), ("out_Domain", domains.outOf),
            ("periodStart", Self.parameter(day.start())), ("periodEnd", Self.parameter(day.end())),
        ]
        switch document {
        case .scheduledExchanges, .ntc: query.append(("contract_MarketAgreement.Type", "A01"))
        case .offeredCapacity: query += [("auction.Type", "A01"), ("contract_MarketAgreement.Type", "A01")]
        case .prices, .flows: break
        }
        return try PullNodeOptions.url(base, "/api", query: query)
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let days = try window.overridden(by: message.payload).days(today: LocalDay(containing: context.clock.now()))
        let prefix = "entsoe/\(document.rawValue)/\(series.dropFirst("entsoe:".count))/"
        return try await PullRun.each(days, context: context, maxRequests: maxRequests, period: { prefix + $0.description }) { day in
            let readings = try await fetch(day, context)
            let covered = readings.reduce(0.0) { $0 + (EntsoeDocument.resolution($1.resolution)?.seconds ?? 0) }
            let whole = covered >= day.end().timeIntervalSince(day.start())
            return (readings, complete: whole || (day.end() <= context.clock.now() && !readings.isEmpty))
        }
    }

    /// One day's readings; the token is taken out of whatever a failure says.
    func fetch(_ day: LocalDay, _ context: NodeContext) async throws -> [Reading] {
        do {
            let response = try await client.get(try url(day), context: context)
            let answer = try EntsoeDocument.parse(response.bytes)
            let points = document == .prices ? answer.dayAheadPrices : EntsoeDocument.merged(answer.series)
            let unit = document == .prices ? "EUR/MWh" : "MW"
            return points.map {
                Reading(series: series, quantity: document.quantity, ts: $0.ts, resolution: $0.resolution, value: $0.value, unit: unit)
            }
        } catch var error as PullError {
            if let secret = token?.reveal(), !secret.isEmpty { error.message = error.message.replacingOccurrences(of: secret, with: "***") }
            throw error
        }
    }
}
