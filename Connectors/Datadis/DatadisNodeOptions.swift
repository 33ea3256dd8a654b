import EnchufeCore
import Foundation
import HTTPPull

/// What every Datadis node type shares: its options, its client (one login per account), the
/// supplies it works on and how they are kept in the store.
extension DatadisModule {
    /// Datadis answers slowly and refuses a request repeated within 24 h: few requests, long waits.
    static let pull = PullNodeOptions(
        baseURL: "https://datadis.es", requestsPerMinute: 6, timeout: .seconds(180), backoff: .seconds(30), days: false, maxRequests: 12)

    /// The NIF/NIE is personal data: held as a `Secret`, so that it never prints either.
    static let username = OptionKey<Secret?>("username", doc: "The account's NIF/NIE, with its letter.", example: "${env:DATADIS_USER}")
    static let password = OptionKey<Secret?>("password", secret: true, doc: "The account's password.", example: "${env:DATADIS_PASSWORD}")
    static let authorizedNIF = OptionKey<String?>(
        "authorized_nif", doc: "The holder's NIF, to read supplies a third party authorised this account for (never your own).")
    static let cups = OptionKey<[String]?>("cups", doc: "Only these supplies (default: every supply of the account).")
    static let api = OptionKey<String>(
        "api", .enumeration(["v2", "v1"]), default: "v2",
        doc: "Datadis endpoints: v2 (`get-...-v2`, which report a failing distributor) or v1 (bare lists).")

    static func options(extra: [OptionSpec]) -> [OptionSpec] {
        [username.spec, password.spec, authorizedNIF.spec, cups.spec, api.spec] + extra + pull.specs
    }

    /// The client of a node; refuses to start without credentials, except in flow tests.
    static func client(_ build: NodeBuildContext, type: String) throws -> DatadisClient {
        let o = build.options
        let missing = "needs Datadis credentials: set `username` and `password` (e.g. ${env:DATADIS_USER} and ${env:DATADIS_PASSWORD})"
        let username = try build.credential(Self.username, missing: missing)?.reveal() ?? ""
        let password = try build.credential(Self.password, missing: missing) ?? Secret("")
        let base = pull.base(o)
        let timeout = o[pull.timeout]
        let rate = o[pull.requestsPerMinute]
        // Data calls are sent once: a retry would be refused for 24 h (and a timeout may have counted).
        let data = PullClient(
            flow: build.flow, node: build.node, type: type, metrics: build.metrics, timeout: timeout,
            retry: RetryPolicy(attempts: 1), requestsPerMinute: rate, retriesRateLimits: false)
        let login = PullClient(
            flow: build.flow, node: build.node + "/login", type: type, metrics: build.metrics, timeout: min(timeout, .seconds(60)),
            retry: RetryPolicy(attempts: o[pull.requestAttempts], backoff: o[pull.requestBackoff], maxBackoff: .seconds(300)),
            requestsPerMinute: rate, errorBody: DatadisClient.loginErrorBody)
        return DatadisClient(
            data: data, login: login, session: DatadisSession.shared(base: base, username: username, password: password), base: base,
            authorizedNIF: o[authorizedNIF].flatMap { $0.isEmpty ? nil : $0 }, v2: o[api] != "v1")
    }

    /// A CUPS as logs show it: the distributor prefix and the last characters.
    static func masked(_ cups: String) -> String { cups.count > 10 ? "\(cups.prefix(6))…\(cups.suffix(4))" : "***" }

    /// The supply a message carries (a `datadis.supplies` output), if any.
    static func supply(from payload: JSONValue, tenant: String) -> SupplyPoint? {
        guard let cups = payload["cups"]?.stringValue, let distributor = payload["distributor_code"]?.templateText else { return nil }
        return SupplyPoint(
            tenant: tenant, cups: cups, tariff: payload["tariff"]?.stringValue, zone: payload["zone"]?.stringValue, distributorCode: distributor,
            pointType: payload["point_type"]?.intValue, contractedPowerKW: payload["contracted_power_kw"]?.arrayValue?.compactMap(\.doubleValue) ?? [],
            validFrom: payload["valid_from"]?.stringValue, validTo: payload["valid_to"]?.stringValue)
    }

    static func payload(_ s: SupplyPoint) -> JSONValue {
        var o: [String: JSONValue] = ["cups": .string(s.cups), "distributor_code": .string(s.distributorCode ?? "")]
        if let p = s.pointType { o["point_type"] = .number(Double(p)) }
        if let z = s.zone { o["zone"] = .string(z) }
        if let t = s.tariff { o["tariff"] = .string(t) }
        if !s.contractedPowerKW.isEmpty { o["contracted_power_kw"] = .array(s.contractedPowerKW.map(JSONValue.number)) }
        if let f = s.validFrom { o["valid_from"] = .string(f) }
        if let t = s.validTo { o["valid_to"] = .string(t) }
        return .object(o)
    }

    /// The supplies a trigger asks for: the one it carries, else the tenant's Datadis supplies in the
    /// store; only `cups` when given.
    static func supplies(for message: Message, cups: [String], context: NodeContext) async throws -> [SupplyPoint] {
        var list: [SupplyPoint]
        if let one = supply(from: message.payload, tenant: context.tenant) {
            list = [one]
        } else {
            let stored = try await context.store.supplies(tenant: context.tenant).filter { $0.distributorCode != nil }
            // The newest validity of each CUPS.
            var newest: [String: SupplyPoint] = [:]
            for s in stored where (newest[s.cups]?.validFrom ?? "") <= (s.validFrom ?? "") { newest[s.cups] = s }
            list = newest.values.sorted { $0.cups < $1.cups }
        }
        if !cups.isEmpty { list = list.filter { s in cups.contains { $0.prefix(20).uppercased() == s.cups.prefix(20).uppercased() } } }
        return list
    }

    /// A supply saved without losing what another node knew of it (tariff, powers, community, coefficient).
    /// `stored`: the tenant's supplies, when the caller has read them already (one read for many saves).
    static func save(_ supply: SupplyPoint, stored: [SupplyPoint]? = nil, context: NodeContext) async throws -> SupplyPoint {
        var s = supply
        var all = stored ?? []
        if stored == nil { all = try await context.store.supplies(tenant: context.tenant) }
        if let known = all.first(where: { $0.cups == s.cups && $0.validFrom == s.validFrom }) {
            s.tariff = s.tariff ?? known.tariff
            if s.contractedPowerKW.isEmpty { s.contractedPowerKW = known.contractedPowerKW }
            s.community = s.community ?? known.community
            s.coefficient = s.coefficient ?? known.coefficient
            if s.raw?["contract"] == nil, let contract = known.raw?["contract"], var raw = s.raw?.objectValue {
                raw["contract"] = contract
                s.raw = .object(raw)
            }
        }
        try await context.store.saveSupply(s)
        return s
    }
}
