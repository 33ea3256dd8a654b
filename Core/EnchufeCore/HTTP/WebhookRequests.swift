import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// `POST /hooks/{path}`: the caller checked, the whole body parsed, `202` once durable.
///
/// A request leaves marks in the store, as named values under `webhook/FLOW/NODE`
/// (`NamedValueStore.claim`): the HMAC signature it used, and the first answer to its
/// `Idempotency-Key`. A mark is claimed atomically before the request is taken
/// (of 16 concurrent copies of one signed request exactly one goes through) and released again
/// unless the request ends in its `202`, so a legitimate retry after a 400, 429 or 503 is not
/// refused as a replay. Marks expire (`signatureMemory`, `idempotencyMemory`) and are purged.
extension HTTPServer {
    /// How long a used signature is remembered: longer than it is accepted (5 minutes either way).
    static let signatureMemory: TimeInterval = 660
    /// How long the first answer to an `Idempotency-Key` is kept and replayed.
    static let idempotencyMemory: TimeInterval = 86_400

    static func webhook(_ request: Request, _ context: HubRequestContext, hub: Hub, access: LocalAccess) async -> Response {
        let path = String(request.uri.path.dropFirst("/hooks/".count))
        guard let endpoint = hub.environment.webhooks.endpoint(path) else {
            return problem(.notFound, title: "No such webhook", detail: "no running flow serves POST /hooks/\(path)")
        }
        var claimed: [NamedKey] = []
        let response = await ingest(request, context, path: path, endpoint: endpoint, hub: hub, access: access, claimed: &claimed)
        if response.status != .accepted {
            for key in claimed { try? await hub.environment.store.removeValue(key) }
        }
        return response
    }

    /// Whether the flow behind `endpoint` makes room within its `wait`.
    private static func roomMade(for endpoint: WebhookRoutes.Endpoint) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await endpoint.waitForRoom()
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: endpoint.wait)
                return false
            }
            let made = await group.next() ?? false
            group.cancelAll()
            return made
        }
    }

    private static func ingest(
        _ request: Request, _ context: HubRequestContext, path: String, endpoint: WebhookRoutes.Endpoint, hub: Hub, access: LocalAccess,
        claimed: inout [NamedKey]
    ) async -> Response {
        let store = hub.environment.store
        let now = hub.environment.clock.now()
        let mark = { (name: String) in NamedKey(tenant: endpoint.tenant, namespace: "webhook/\(endpoint.flow)/\(endpoint.node)", name: name) }
        let body: [UInt8]
        switch await Self.body(of: request, limit: endpoint.maxBody, what: "this webhook") {
        case .success(let bytes): body = bytes
        case .failure(let refusal): return refusal.response
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
            let signature: WebhookSignature
            do {
                signature = try WebhookSignature(request.headers[HTTPField.Name("X-Enchufe-Signature")!], body: body, secret: secret, now: now)
            } catch {
                return problem(.unauthorized, title: "Bad signature", detail: error.description)
            }
            let used = mark("hmac:" + signature.hex)
            do {
                guard try await store.claim(used, value: String(signature.timestamp), expiresAt: Date().addingTimeInterval(signatureMemory)) else {
                    return problem(.unauthorized, title: "Bad signature", detail: "this signature was used before (a replay)")
                }
            } catch {
                return problem(.serviceUnavailable, title: "Store unavailable", detail: "the signature could not be checked: the store is not reachable")
            }
            claimed.append(used)
        case .none:
            guard access.listensOnLoopback, access.isLocal(request, peer: context.peer) else {
                return problem(.forbidden, title: "Forbidden", detail: "this webhook has auth: none, which is served only to this machine when the hub listens on loopback (and not through a proxy); give it auth: api_key or hmac")
            }
            guard !LocalAccess.fromAnotherSite(request) else {
                return problem(.forbidden, title: "Forbidden", detail: "a web page of another site may not post to an auth: none webhook")
            }
            actor = "anonymous"
        }
        var idempotency: NamedKey?
        if let given = request.headers[HTTPField.Name("Idempotency-Key")!] {
            guard (1...255).contains(given.utf8.count), given.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) else {
                return problem(.badRequest, title: "Bad Idempotency-Key", detail: "an Idempotency-Key is 1 to 255 printable ASCII characters")
            }
            let key = mark("idempotency:" + given)
            do {
                if try await !store.claim(key, value: "", expiresAt: Date().addingTimeInterval(idempotencyMemory)) {
                    // Taken before: the first answer again, or, while that request is still running, a 409.
                    guard let first = try await store.value(key, now: Date()), let json = try? JSONValue.parse(first) else {
                        return problem(.conflict, title: "In progress", detail: "a request with this Idempotency-Key is being handled; send again later")
                    }
                    var r = Self.json(.init(code: json["status"]?.intValue ?? 202), json["body"] ?? .null)
                    r.headers[HTTPField.Name("Idempotent-Replayed")!] = "true"
                    return r
                }
            } catch {
                return problem(.serviceUnavailable, title: "Store unavailable", detail: "the Idempotency-Key could not be checked: the store is not reachable")
            }
            claimed.append(key)
            idempotency = key
        }
        let messages: [Message]
        do {
            messages = try endpoint.parse(body, request.headers[.contentType], now)
        } catch let error as WebhookBodyError {
            return error.unsupportedType
                ? problem(.unsupportedMediaType, title: "Unsupported content type", detail: error.description)
                : problem(error.tooLarge ? .contentTooLarge : .badRequest, title: "Unreadable body", detail: error.description + "; nothing of this request was stored")
        } catch {
            return problem(.badRequest, title: "Unreadable body", detail: "\(error); nothing of this request was stored")
        }
        // Backpressure: while the flow's queue stays full for `wait`, 429 (nothing of the request
        // taken). The request is woken when the flow makes room, not by polling.
        if endpoint.room() < 1, await !Self.roomMade(for: endpoint) {
            var r = problem(.tooManyRequests, title: "Busy", detail: "the flow behind this webhook is full; nothing of this request was taken; send again after Retry-After")
            r.headers[.retryAfter] = "1"
            return r
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
            try? await store.setValue(idempotency, (["status": 202, "body": answer] as JSONValue).jsonText(), expiresAt: Date().addingTimeInterval(idempotencyMemory))
        }
        try? await store.appendAudit(
            tenant: endpoint.tenant, actor: actor, action: "ingest",
            detail: ["path": .string(path), "accepted": .number(Double(messages.count))], at: now)
        return json(.accepted, answer)
    }
}

/// `X-Enchufe-Signature: t=UNIX,v1=HEX` with HEX = HMAC-SHA256(secret, "t.body"), checked: refused
/// when missing, malformed, wrong, or older than 5 minutes (either way).
public struct WebhookSignature: Sendable {
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    public let timestamp: Int64
    /// The signature, lower-case hex.
    public let hex: String

    /// The fields of a header: `t` (whole seconds since 1970, as sent) and `v1` (64 hex digits).
    public static func fields(_ header: String) throws(Problem) -> (t: String, timestamp: Int64, v1: String) {
        guard header.utf8.count <= 512 else { throw Problem(description: "the signature header is longer than 512 bytes") }
        var fields: [Substring: Substring] = [:]
        for part in header.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[kv[0].trimmingCharacters(in: .whitespaces)[...]] = kv[1].trimmingCharacters(in: .whitespaces)[...] }
        }
        guard let t = fields["t"], (1...12).contains(t.count), t.allSatisfy({ $0.isASCII && $0.isNumber }), let seconds = Int64(t),
            let v1 = fields["v1"], v1.count == 64, v1.allSatisfy({ $0.isHexDigit })
        else { throw Problem(description: "the signature header must be t=UNIX,v1=HEX (whole seconds, 64 hex digits)") }
        return (String(t), seconds, v1.lowercased())
    }

    public init(_ header: String?, body: [UInt8], secret: Secret, now: Date) throws(Problem) {
        guard let header else { throw Problem(description: "this webhook needs X-Enchufe-Signature: t=UNIX,v1=HMAC-SHA256(secret, \"t.body\") in hex") }
        let (text, t, given) = try Self.fields(header)
        guard abs(now.timeIntervalSince1970 - Double(t)) <= 300 else {
            throw Problem(description: "the signature is older than 5 minutes (or from the future): sign again")
        }
        let mac = HMAC<SHA256>.authenticationCode(for: Array(text.utf8) + [UInt8(ascii: ".")] + body, using: SymmetricKey(data: Data(secret.reveal().utf8)))
        let expected = mac.map { String(format: "%02x", $0) }.joined()
        guard APIKeys.constantTimeEqual(Array(expected.utf8), Array(given.utf8)) else { throw Problem(description: "the signature does not match the body") }
        timestamp = t
        hex = expected
    }
}
