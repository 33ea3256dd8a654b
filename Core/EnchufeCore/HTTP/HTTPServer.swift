import Foundation
import Hummingbird
import Logging
import NIOCore

/// The hub's HTTP API (SPEC §6): health, readiness and metrics so far.
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
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "Enchufe"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
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
