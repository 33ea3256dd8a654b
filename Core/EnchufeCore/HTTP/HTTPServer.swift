import Foundation
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
        let router = Router()
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
            let key: APIKeyRecord
            switch await authorize(request, scope: "read", store: store) {
            case .success(let k): key = k
            case .failure(let refusal): return refusal.response
            }
            let supplies = try await store.supplies(tenant: key.tenant)
            return json(.ok, ["supplies": .array(supplies.map(supplyJSON))])
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "Enchufe"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
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
