import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The hub's HTTP API (SPEC §6): health, readiness, metrics, and the first data route.
public enum HTTPServer {
    /// An application serving the hub on `host:port` (port 0: any free port, reported to `onRunning`).
    public static func application(
        hub: Hub, host: String, port: Int, logger: Logger,
        onRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(hub: hub, host: host),
            configuration: .init(address: .hostname(host, port: port), serverName: "Enchufe"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// Every route of the API (`OpenAPI.document` describes each of them).
    public static func router(hub: Hub, host: String) -> Router<BasicRequestContext> {
        let router = Router()
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
        router.get("/metrics") { _, _ in
            hub.recordQueueDepths()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: hub.environment.metrics.text())))
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
                let body = try await request.body.collect(upTo: 1 << 20)
                let supply: SupplyPoint
                do {
                    supply = try supplyFromJSON(cups: cups, tenant: key.tenant, String(buffer: body))
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
        let loopback = ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.")
        router.post("/hooks/**") { request, _ -> Response in
            await webhook(request, hub: hub, loopback: loopback)
        }
        addOperatorRoutes(router, hub: hub, loopback: loopback)
        return router
    }

    // MARK: Webhooks

    /// `POST /hooks/{path}`: the endpoint's caller checked, the whole body parsed, `202` once durable.
    static func webhook(_ request: Request, hub: Hub, loopback: Bool) async -> Response {
        let path = String(request.uri.path.dropFirst("/hooks/".count))
        guard let endpoint = hub.environment.webhooks.endpoint(path) else {
            return problem(.notFound, title: "No such webhook", detail: "no running flow serves POST /hooks/\(path)")
        }
        let store = hub.environment.store
        let now = hub.environment.clock.now()
        if let length = request.headers[.contentLength].flatMap(Int.init), length > endpoint.maxBody {
            return problem(.contentTooLarge, title: "Body too large", detail: "\(length) bytes; this webhook takes at most \(endpoint.maxBody)")
        }
        let body: [UInt8]
        do {
            body = Array(buffer: try await request.body.collect(upTo: endpoint.maxBody))
        } catch {
            return problem(.contentTooLarge, title: "Body too large", detail: "this webhook takes at most \(endpoint.maxBody) bytes")
        }
        // Who is calling.
        var actor = "hmac"
        switch endpoint.auth {
        case .apiKey:
            switch await authorize(request, scope: "ingest", store: store) {
            case .failure(let refusal): return refusal.response
            case .success(let key):
                guard key.tenant == endpoint.tenant else {
                    return problem(.forbidden, title: "Forbidden", detail: "key \(key.id) belongs to another tenant than this webhook's")
                }
                actor = "key:" + key.id
            }
        case .hmac(let secret):
            if let refusal = await checkSignature(request.headers[HTTPField.Name("X-Enchufe-Signature")!], body: body, secret: secret, endpoint: endpoint, now: now, store: store) {
                return refusal
            }
        case .none:
            guard loopback else {
                return problem(.forbidden, title: "Forbidden", detail: "this webhook has auth: none, which is served only when the hub listens on loopback; give it auth: api_key or hmac")
            }
            actor = "anonymous"
        }
        let idempotency = request.headers[HTTPField.Name("Idempotency-Key")!].map { "idempotency:" + $0 }
        let checkpoint = { (key: String) in CheckpointKey(tenant: endpoint.tenant, flow: endpoint.flow, node: endpoint.node, key: key) }
        if let idempotency, let first = try? await store.checkpoint(checkpoint(idempotency)), let json = try? JSONValue.parse(first.value) {
            var r = Self.json(.init(code: json["status"]?.intValue ?? 202), json["body"] ?? .null)
            r.headers[HTTPField.Name("Idempotent-Replayed")!] = "true"
            return r
        }
        let messages: [Message]
        do {
            messages = try endpoint.parse(body, request.headers[.contentType], now)
        } catch let error as WebhookBodyError {
            return error.unsupportedType
                ? problem(.unsupportedMediaType, title: "Unsupported content type", detail: error.description)
                : problem(.badRequest, title: "Unreadable body", detail: error.description + "; nothing of this request was stored")
        } catch {
            return problem(.badRequest, title: "Unreadable body", detail: "\(error); nothing of this request was stored")
        }
        // Backpressure: while the flow's queue stays full for `wait`, 429 (nothing of the request taken).
        let needed = 1
        let deadline = ContinuousClock.now + endpoint.wait
        while endpoint.room() < needed {
            guard ContinuousClock.now < deadline else {
                var r = problem(.tooManyRequests, title: "Busy", detail: "the flow behind this webhook is full; nothing of this request was taken; send again after Retry-After")
                r.headers[.retryAfter] = "1"
                return r
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let outcome: DeliveryOutcome
        do {
            outcome = await (try await endpoint.submit(messages)).outcome()
        } catch {
            return problem(.serviceUnavailable, title: "Not accepted", detail: "the flow is stopping; send again")
        }
        guard outcome == .committed else {
            return problem(.serviceUnavailable, title: "Not stored", detail: "the data could not be made durable; send again")
        }
        let answer: JSONValue = ["accepted": .number(Double(messages.count)), "id": .string(UUID().uuidString.lowercased())]
        if let idempotency {
            try? await store.saveCheckpoint(checkpoint(idempotency), value: (["status": 202, "body": answer] as JSONValue).jsonText())
        }
        try? await store.appendAudit(
            tenant: endpoint.tenant, actor: actor, action: "ingest",
            detail: ["path": .string(path), "accepted": .number(Double(messages.count))], at: now)
        return json(.accepted, answer)
    }

    /// `X-Enchufe-Signature: t=UNIX,v1=HEX` with HEX = HMAC-SHA256(secret, "t.body"): refused when
    /// missing, wrong, older than 5 minutes (either way) or used before.
    static func checkSignature(
        _ header: String?, body: [UInt8], secret: Secret, endpoint: WebhookRoutes.Endpoint, now: Date, store: any Store
    ) async -> Response? {
        func refuse(_ why: String) -> Response { problem(.unauthorized, title: "Bad signature", detail: why) }
        guard let header else { return refuse("this webhook needs X-Enchufe-Signature: t=UNIX,v1=HMAC-SHA256(secret, \"t.body\") in hex") }
        var fields: [String: String] = [:]
        for part in header.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2 { fields[kv[0]] = kv[1] }
        }
        guard let t = fields["t"], let seconds = Double(t), let given = fields["v1"] else { return refuse("the signature header must be t=UNIX,v1=HEX") }
        guard abs(now.timeIntervalSince1970 - seconds) <= 300 else { return refuse("the signature is older than 5 minutes (or from the future): sign again") }
        let mac = HMAC<SHA256>.authenticationCode(for: Array(t.utf8) + [UInt8(ascii: ".")] + body, using: SymmetricKey(data: Data(secret.reveal().utf8)))
        let expected = mac.map { String(format: "%02x", $0) }.joined()
        guard APIKeys.constantTimeEqual(Array(expected.utf8), Array(given.lowercased().utf8)) else { return refuse("the signature does not match the body") }
        let used = CheckpointKey(tenant: endpoint.tenant, flow: endpoint.flow, node: endpoint.node, key: "hmac:" + expected)
        if (try? await store.checkpoint(used)) != nil { return refuse("this signature was used before (a replay)") }
        try? await store.saveCheckpoint(used, value: t)
        return nil
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
        guard record.scopes.contains(scope) || record.scopes.contains("admin") else {
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
        let known: Set<String> = ["tariff", "zone", "community", "coefficient", "contracted_power_kw", "valid_from", "valid_to", "distributor_code", "point_type"]
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
