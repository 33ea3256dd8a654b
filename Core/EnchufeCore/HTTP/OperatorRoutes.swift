import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import Synchronization

/// The routes an operator watches and steers a running hub with: flows and their status, reload,
/// dead letters and their replay, the live tap, and the status page. They need an `admin` key
/// (which sees its tenant's flows and dead letters) or, when the hub listens on loopback only, a
/// request with no key at all (the machine's operator, who sees every tenant).
extension HTTPServer {
    /// Whose view a request gets: a tenant (the key's: admin, or the scope a route asks, `read` for
    /// the alerts), or every tenant (nil) from loopback.
    enum Operator {
        case tenant(String, keyID: String)
        case local

        var tenant: String? {
            if case .tenant(let t, _) = self { t } else { nil }
        }
        var actor: String {
            if case .tenant(_, let id) = self { "key:" + id } else { "loopback" }
        }
    }

    static func asOperator(
        _ request: Request, _ context: HubRequestContext, hub: Hub, access: LocalAccess, scope: String = "admin",
        _ body: (Operator) async throws -> Response
    ) async throws -> Response {
        if access.isOperator(request, peer: context.peer) {
            return try await body(.local)
        }
        return try await authorized(request, scope: scope, store: hub.environment.store) { key in
            try await body(.tenant(key.tenant, keyID: key.id))
        }
    }

    static func addOperatorRoutes(_ router: Router<HubRequestContext>, hub: Hub, access: LocalAccess) {
        router.get("/api/v1/flows") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                json(.ok, hub.status(tenant: who.tenant).json)
            }
        }
        router.get("/api/v1/flows/:flow") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                let id = context.parameters.get("flow") ?? ""
                let status = hub.status(tenant: who.tenant)
                guard let flow = status.flows.first(where: { $0.id == id }) else {
                    return problem(.notFound, title: "No such flow", detail: "no running flow '\(id)'\(who.tenant.map { " of tenant '\($0)'" } ?? "")")
                }
                return json(.ok, flow.json(at: status.at))
            }
        }
        router.post("/api/v1/flows/reload") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                let report: Hub.ReloadReport
                do {
                    report = try await hub.reloadFromSource()
                } catch {
                    return problem(.conflict, title: "Not reloaded", detail: hub.environment.redactor.redact("\(error)"))
                }
                // A tenant's admin sees what the reload did to its own flows only.
                let seen = report.json(tenant: who.tenant)
                try? await hub.environment.store.appendAudit(
                    tenant: who.tenant ?? "*", actor: who.actor, action: "flows.reload", detail: seen, at: hub.environment.clock.now())
                return json(.ok, seen)
            }
        }
        let store = hub.environment.store
        router.get("/api/v1/dead-letters") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                guard let limit = Int(request.uri.queryParameters["limit"].flatMap { $0.isEmpty ? nil : String($0) } ?? "100"), (1...1000).contains(limit) else {
                    return problem(.badRequest, title: "Bad query", detail: "limit must be between 1 and 1000")
                }
                let letters = try await store.deadLetters(tenant: who.tenant, limit: limit)
                return json(.ok, ["dead_letters": .array(letters.map { redacted($0.json, hub) })])
            }
        }
        router.get("/api/v1/dead-letters/:id") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                switch try await deadLetter(context, who: who, store: store) {
                case .success(let letter): return json(.ok, redacted(letter.json, hub))
                case .failure(let refusal): return refusal.response
                }
            }
        }
        router.post("/api/v1/dead-letters/:id/replay") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                let letter: DeadLetter
                switch try await deadLetter(context, who: who, store: store) {
                case .success(let l): letter = l
                case .failure(let refusal): return refusal.response
                }
                if letter.replayedAt != nil {
                    return problem(.conflict, title: "Already replayed", detail: "dead letter \(letter.id) was replayed at \(ISO8601.string(letter.replayedAt!))")
                }
                let outcome: DeliveryOutcome
                do {
                    outcome = try await hub.replay(letter)
                } catch {
                    return problem(.conflict, title: "Not replayed", detail: hub.environment.redactor.redact("\(error)"))
                }
                try? await store.appendAudit(
                    tenant: letter.tenant, actor: who.actor, action: "dlq.replay", detail: ["id": .number(Double(letter.id))], at: hub.environment.clock.now())
                guard outcome == .committed else {
                    return problem(.serviceUnavailable, title: "Not replayed", detail: "the replayed message was not committed (the flow is stopping); dead letter \(letter.id) stays")
                }
                return json(.ok, ["replayed": .number(Double(letter.id)), "flow": .string(letter.flow), "node": .string(letter.node), "outcome": "committed"])
            }
        }
        router.delete("/api/v1/dead-letters") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                let n = try await store.purgeDeadLetters(tenant: who.tenant)
                try? await store.appendAudit(
                    tenant: who.tenant ?? "*", actor: who.actor, action: "dlq.purge", detail: ["deleted": .number(Double(n))], at: hub.environment.clock.now())
                return json(.ok, ["deleted": .number(Double(n))])
            }
        }
        router.get("/api/v1/tap") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { who in
                let q = request.uri.queryParameters
                guard let flow = q["flow"].map(String.init), let node = q["node"].map(String.init) else {
                    return problem(.badRequest, title: "Bad query", detail: "give the node to tap: ?flow=FLOW&node=NODE")
                }
                guard let tap = hub.tap(flow: flow, node: node, tenant: who.tenant) else {
                    return problem(.notFound, title: "No such node", detail: "no running node '\(node)' in flow '\(flow)'")
                }
                guard let events = tap.subscribe(heartbeat: .seconds(15)) else {
                    var r = problem(.tooManyRequests, title: "Too many watchers", detail: "at most \(hub.environment.tapWatchers.limit) taps may be watched at a time; close one")
                    r.headers[.retryAfter] = "10"
                    return r
                }
                var headers = HTTPFields()
                headers[.contentType] = "text/event-stream"
                headers[.cacheControl] = "no-cache"
                return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                    // The writer waits while the connection cannot take more: a watcher that stopped
                    // reading would hold a connection for ever (its events, at most `2 × rate`, are the
                    // newest kept by the stream). A write that has waited longer than the hub's
                    // `tapWatchers.patience` closes the connection, which ends the write.
                    let patience = hub.environment.tapWatchers.patience
                    let pending = PendingWrite()
                    let watchdog = Task {
                        while !Task.isCancelled {
                            try await Task.sleep(for: patience / 4)
                            if let since = pending.since, ContinuousClock.now - since > patience {
                                context.closeConnection()
                                return
                            }
                        }
                    }
                    defer { watchdog.cancel() }
                    func send(_ text: String) async throws {
                        pending.since = .now
                        try await writer.write(ByteBuffer(string: text))
                        pending.since = nil
                    }
                    try await send(": tap of \(flow)/\(node), at most \(tap.rate) messages a second\n\n")
                    // Ends when the flow stops or the server shuts down (a client may watch forever).
                    for await event in events.cancelOnGracefulShutdown() {
                        try await send(event.serverSentEvent)
                    }
                    try await writer.finish(nil)
                })
            }
        }
        router.get("/api/v1/cluster") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access) { _ in
                let now = hub.environment.clock.now()
                let instances = try await store.instances()
                let leases = try await store.leases()
                return json(.ok, [
                    "leases": .array(leases.map { l in
                        [
                            "name": .string(l.name), "holder": .string(l.holder), "fence": .number(Double(l.fence)),
                            "expires_at": .string(ISO8601.string(l.expiresAt)), "held": .bool(l.expiresAt > now),
                        ]
                    }),
                    "instance": .string(hub.environment.instance),
                    "instances": .array(instances.map { i in
                        [
                            "id": .string(i.id), "host": .string(i.host), "pid": .number(Double(i.pid)), "http": .string(i.http),
                            "started_at": .string(ISO8601.string(i.startedAt)), "heartbeat_at": .string(ISO8601.string(i.heartbeatAt)),
                            "alive": .bool(InstanceHeartbeat.isAlive(i, now: now)), "this": .bool(i.id == hub.environment.instance),
                        ]
                    }),
                ])
            }
        }
        addStatusPage(router, hub: hub)
    }

    /// `value` with the flows' secrets hidden (a dead letter's message may carry one).
    static func redacted(_ value: JSONValue, _ hub: Hub) -> JSONValue {
        (try? JSONValue.parse(hub.environment.redactor.redact(value.jsonText()))) ?? value
    }

    /// The dead letter of the route's `id`, if the operator may see it.
    static func deadLetter(_ context: HubRequestContext, who: Operator, store: any Store) async throws -> Result<DeadLetter, Refusal> {
        let text = context.parameters.get("id") ?? ""
        guard let id = Int64(text) else {
            return .failure(Refusal(response: problem(.badRequest, title: "Bad id", detail: "'\(text)' is not a dead letter id")))
        }
        guard let letter = try await store.deadLetter(id: id), who.tenant == nil || letter.tenant == who.tenant else {
            return .failure(Refusal(response: problem(.notFound, title: "No such dead letter", detail: "no dead letter \(id)")))
        }
        return .success(letter)
    }
}

extension DeadLetter {
    public var json: JSONValue {
        [
            "id": .number(Double(id)), "tenant": .string(tenant), "flow": .string(flow), "node": .string(node),
            "error": .string(error), "attempts": .number(Double(attempts)),
            "created_at": .string(ISO8601.string(createdAt)),
            "replayed_at": replayedAt.map { .string(ISO8601.string($0)) } ?? .null, "message": message,
        ]
    }
}

extension Tap.Event {
    /// The event as Server-Sent Events text: `event: message` with the message as data, or a
    /// comment for a heartbeat.
    var serverSentEvent: String {
        if port.isEmpty { return ": keep-alive\n\n" }
        // `message` is JSON text already (redacted as text): spliced in, not parsed again.
        return "event: message\ndata: {\"at\":\"\(ISO8601.string(at))\",\"port\":\(JSONValue.string(port).jsonText()),\"skipped\":\(skipped),\"message\":\(message)}\n\n"
    }
}

/// When the write under way began (nil: none).
private final class PendingWrite: Sendable {
    private let began = Mutex<ContinuousClock.Instant?>(nil)
    var since: ContinuousClock.Instant? {
        get { began.withLock { $0 } }
        set { began.withLock { $0 = newValue } }
    }
}
