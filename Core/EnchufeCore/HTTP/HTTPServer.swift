import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The hub's HTTP API (SPEC §6): health, readiness, metrics, and the first data route.
public enum HTTPServer {
    /// An application serving the hub on `host:port` (port 0: any free port, reported to `onRunning`).
    /// `requireKeys`: operator routes and `/metrics` need a key even from this machine (`LocalAccess`).
    public static func application(
        hub: Hub, host: String, port: Int, logger: Logger, requireKeys: Bool = false,
        limits: ConnectionLimits = ConnectionLimits(),
        onRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            responder: UnreadBodies(routes: router(hub: hub, access: LocalAccess(host: host, requireKeys: requireKeys)).buildResponder()),
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(limits.idleTimeout.nanosecondsTotal)))),
            configuration: .init(
                address: .hostname(host, port: port), serverName: "Enchufe",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.connections, logger: logger)),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// Every route of the API (`OpenAPI.document` describes each of them).
    public static func router(hub: Hub, access: LocalAccess) -> Router<HubRequestContext> {
        let router = Router(context: HubRequestContext.self)
        router.get("/openapi.json") { _, _ in
            json(.ok, OpenAPI.document)
        }
        router.get("/healthz") { _, _ in
            json(.ok, ["status": "ok"])
        }
        router.get("/readyz") { _, _ in
            do {
                try await hub.environment.store.ping()
            } catch {
                return problem(.serviceUnavailable, title: "Not ready", detail: "the store is not reachable: \(hub.environment.redactor.redact("\(error)"))")
            }
            return json(.ok, ["status": "ready", "flows": .number(Double(hub.flows.count)), "flows_not_started": .number(Double(hub.notStarted.count))])
        }
        router.get("/metrics") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                hub.recordQueueDepths()
                let text = hub.environment.metrics.text()
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: who.tenant.map { hub.metricsText(text, tenant: $0) } ?? text)))
            }
        }
        let store = hub.environment.store
        router.get("/api/v1/supplies") { request, _ -> Response in
            try await authorized(request, scope: "read", store: store) { key in
                let supplies = try await store.supplies(tenant: key.tenant)
                return json(.ok, ["supplies": .array(supplies.map(supplyJSON))])
            }
        }
        router.put("/api/v1/supplies/:cups") { request, context -> Response in
            try await authorized(request, scope: "admin", store: store) { key in
                let cups = context.parameters.get("cups") ?? ""
                let body: [UInt8]
                switch await Self.body(of: request, limit: 1 << 20, what: "a supply") {
                case .success(let bytes): body = bytes
                case .failure(let refusal): return refusal.response
                }
                let supply: SupplyPoint
                do {
                    supply = try supplyFromJSON(cups: cups, tenant: key.tenant, String(decoding: body, as: UTF8.self))
                } catch {
                    return problem(.badRequest, title: "Bad supply", detail: "\(error)")
                }
                try await store.saveSupply(supply)
                try? await store.appendAudit(
                    tenant: key.tenant, actor: "key:" + key.id, action: "supply.put", detail: ["cups": .string(cups)], at: hub.environment.clock.now())
                return json(.ok, supplyJSON(supply))
            }
        }
        addDataRoutes(router, hub: hub)
        addForecastRoutes(router, hub: hub)
        addCommunityRoutes(router, hub: hub)
        addDashboardRoutes(router, hub: hub, access: access)
        router.post("/hooks/**") { request, context -> Response in
            await webhook(request, context, hub: hub, access: access)
        }
        addOperatorRoutes(router, hub: hub, access: access)
        addAlertRoute(router, hub: hub, access: access)
        return router
    }

    /// The whole body of a request, or a `413` as soon as it is larger than `limit` (what is left
    /// of it is read and dropped by `UnreadBodies` before the answer goes out).
    static func body(of request: Request, limit: Int, what: String) async -> Result<[UInt8], Refusal> {
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        var bytes: [UInt8] = []
        var tooLarge = (declared ?? 0) > limit
        if !tooLarge {
            if let declared { bytes.reserveCapacity(declared) }
            do {
                for try await chunk in request.body {
                    guard bytes.count + chunk.readableBytes <= limit else {
                        tooLarge = true
                        break
                    }
                    bytes.append(contentsOf: chunk.readableBytesView)
                }
            } catch {
                return .failure(Refusal(response: problem(.badRequest, title: "Unreadable body", detail: "the body could not be read: \(error)")))
            }
        }
        guard tooLarge else { return .success(bytes) }
        return .failure(Refusal(response: problem(
            .contentTooLarge, title: "Body too large", detail: "\(declared.map { "\($0) bytes" } ?? "more than \(limit) bytes"); \(what) takes at most \(limit)")))
    }

    /// Why a request is refused: `401` without a valid key, `403` without the scope.
    public struct Refusal: Error {
        public var response: Response
    }

    /// The key of a request (`Authorization: Bearer KEY`) if it has `scope`; a key with `admin`
    /// may do everything. Every data route answers only with the key's tenant's data.
    public static func authorize(_ request: Request, scope: String, store: any Store) async -> Result<APIKeyRecord, Refusal> {
        let record: APIKeyRecord?
        do {
            record = try await APIKeys.authenticate(request.headers[.authorization], store: store)
        } catch {
            return .failure(Refusal(response: problem(.serviceUnavailable, title: "Store unavailable", detail: "the key could not be checked: the store is not reachable")))
        }
        guard let record else {
            var r = problem(.unauthorized, title: "Unauthorized", detail: "this route needs an API key: Authorization: Bearer KEY (create one with `enchufe keys create`); the one given is unknown, revoked or missing")
            r.headers[.wwwAuthenticate] = "Bearer"
            return .failure(Refusal(response: r))
        }
        guard APIKeys.allows(record.scopes, scope) else {
            return .failure(Refusal(response: problem(.forbidden, title: "Forbidden", detail: "key \(record.id) has scopes \(record.scopes.joined(separator: ", ")); this route needs '\(scope)'")))
        }
        return .success(record)
    }

    /// The answer of `body` for the request's key, or the refusal if the key lacks `scope`.
    static func authorized(
        _ request: Request, scope: String, store: any Store, _ body: (APIKeyRecord) async throws -> Response
    ) async throws -> Response {
        switch await authorize(request, scope: scope, store: store) {
        case .success(let key): return try await body(key)
        case .failure(let refusal): return refusal.response
        }
    }

    struct SupplyProblem: Error, CustomStringConvertible { var description: String }

    /// The body of `PUT /api/v1/supplies/{cups}`, checked field by field.
    static func supplyFromJSON(cups: String, tenant: String, _ text: String) throws -> SupplyPoint {
        guard CUPS.isValid(cups) else { throw SupplyProblem(description: "'\(cups)' is not a CUPS (ES, 16 digits, the 2 control letters that match them, optionally a 2-character border point)") }
        guard let fields = (try? JSONValue.parse(text))?.objectValue else { throw SupplyProblem(description: "the body must be a JSON object") }
        let known: Set<String> = ["tariff", "zone", "community", "coefficient", "contracted_power_kw", "valid_from", "valid_to", "distributor_code", "point_type", "pv", "market"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw SupplyProblem(description: "unknown field '\(unknown)' (fields: \(known.sorted().joined(separator: ", ")))")
        }
        func field(_ name: String) throws -> String? {
            guard let v = fields[name], !v.isNull else { return nil }
            guard let s = v.stringValue else { throw SupplyProblem(description: "\(name) must be a string") }
            return s
        }
        var supply = SupplyPoint(tenant: tenant, cups: cups)
        supply.tariff = try field("tariff")
        if let t = supply.tariff, TariffCalendar.Tariff(t) == nil { throw SupplyProblem(description: "tariff '\(t)' is not one of 2.0TD, 3.0TD, 6.1TD...6.4TD, 3.0TDVE, 6.1TDVE") }
        supply.zone = try field("zone")
        if let z = supply.zone, TariffZone(named: z) == nil { throw SupplyProblem(description: "zone '\(z)' is not one of \(TariffZone.allCases.map(\.rawValue).joined(separator: ", "))") }
        supply.community = try field("community")
        supply.distributorCode = try field("distributor_code")
        if let p = fields["point_type"], !p.isNull {
            guard let n = p.intValue, (1...5).contains(n) else { throw SupplyProblem(description: "point_type must be 1 to 5") }
            supply.pointType = n
        }
        if let c = fields["coefficient"], !c.isNull {
            guard let v = c.doubleValue, (0...1).contains(v) else { throw SupplyProblem(description: "coefficient must be a number from 0 to 1") }
            supply.coefficient = v
        }
        if let power = fields["contracted_power_kw"], !power.isNull {
            let kws = power.doubleValue.map { [$0] } ?? power.arrayValue?.compactMap { $0.doubleValue } ?? []
            guard !kws.isEmpty, kws.count <= 6, kws.count == (power.arrayValue?.count ?? 1) else {
                throw SupplyProblem(description: "contracted_power_kw must be a number or a list of 1 to 6 numbers (P1..P6)")
            }
            supply.contractedPowerKW = kws
        }
        for name in ["valid_from", "valid_to"] {
            if let d = try field(name), LocalDay(d) == nil { throw SupplyProblem(description: "\(name) '\(d)' is not a date (YYYY-MM-DD)") }
        }
        supply.validFrom = try field("valid_from")
        supply.validTo = try field("valid_to")
        if let f = supply.validFrom, let t = supply.validTo, t < f { throw SupplyProblem(description: "valid_to is before valid_from") }
        if let pv = fields["pv"], !pv.isNull {
            do {
                supply.pv = try PVSystem(json: pv)
            } catch {
                throw SupplyProblem(description: error.description)
            }
        }
        if let market = fields["market"], !market.isNull {
            do {
                supply.market = try MarketOrder(json: market)
            } catch {
                throw SupplyProblem(description: "\(error)")
            }
        }
        return supply
    }

    static func supplyJSON(_ s: SupplyPoint) -> JSONValue {
        var o: [String: JSONValue] = ["cups": .string(s.cups), "contracted_power_kw": .array(s.contractedPowerKW.map(JSONValue.number))]
        o["tariff"] = s.tariff.map(JSONValue.string) ?? .null
        o["zone"] = s.zone.map(JSONValue.string) ?? .null
        o["distributor_code"] = s.distributorCode.map(JSONValue.string) ?? .null
        o["point_type"] = s.pointType.map { .number(Double($0)) } ?? .null
        o["community"] = s.community.map(JSONValue.string) ?? .null
        o["coefficient"] = s.coefficient.map(JSONValue.number) ?? .null
        o["valid_from"] = s.validFrom.map(JSONValue.string) ?? .null
        o["valid_to"] = s.validTo.map(JSONValue.string) ?? .null
        o["pv"] = s.pv?.json ?? .null
        o["market"] = s.market?.json ?? .null
        return .object(o)
    }

    static func json(_ status: HTTPResponse.Status, _ body: JSONValue) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body.jsonText())))
    }

    /// An RFC 9457 problem document.
    static func problem(_ status: HTTPResponse.Status, title: String, detail: String) -> Response {
        let body: JSONValue = ["type": "about:blank", "title": .string(title), "status": .number(Double(status.code)), "detail": .string(detail)]
        return Response(
            status: status, headers: [.contentType: "application/problem+json"],
            body: .init(byteBuffer: ByteBuffer(string: body.jsonText())))
    }
}
