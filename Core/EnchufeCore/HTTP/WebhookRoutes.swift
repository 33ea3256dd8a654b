import Foundation
import Synchronization

/// The webhook endpoints of the running flows (`POST /hooks/{path}`), each served by its
/// `webhook.in` node: the HTTP server finds the endpoint, checks the caller, has the node parse the
/// whole body, and answers `202` only once everything is durable.
public final class WebhookRoutes: Sendable {
    public enum Auth: Sendable {
        case apiKey
        case hmac(Secret)
        case none
    }

    public struct Endpoint: Sendable {
        public var tenant: String
        public var flow: String
        public var node: String
        public var auth: Auth
        public var maxBody: Int
        /// The messages of a request body (all of it, or a `WebhookBodyError` naming the line or field).
        public var parse: @Sendable (_ body: [UInt8], _ contentType: String?, _ receivedAt: Date) throws -> [Message]
        /// Sends the messages into the flow; the delivery settles when they are all committed.
        public var submit: @Sendable (_ messages: [Message]) async throws -> Delivery
        /// How many messages the flow takes now without waiting.
        public var room: @Sendable () -> Int = { .max }
        /// Returns once the flow has room (or the task is cancelled).
        public var waitForRoom: @Sendable () async -> Void = {}
        /// How long a request waits for room before it is answered 429.
        public var wait: Duration = .seconds(2)

        public init(
            tenant: String, flow: String, node: String, auth: Auth, maxBody: Int,
            parse: @escaping @Sendable ([UInt8], String?, Date) throws -> [Message],
            submit: @escaping @Sendable ([Message]) async throws -> Delivery
        ) {
            self.tenant = tenant
            self.flow = flow
            self.node = node
            self.auth = auth
            self.maxBody = maxBody
            self.parse = parse
            self.submit = submit
        }
    }

    private let endpoints = Mutex<[String: Endpoint]>([:])

    public init() {}

    /// Serves `path` with `endpoint`; a path two nodes claim is refused.
    public func register(_ path: String, _ endpoint: Endpoint) throws {
        try endpoints.withLock { all in
            if let other = all[path], other.flow != endpoint.flow || other.node != endpoint.node {
                throw PermanentError("the webhook path '\(path)' is already served by \(other.flow)/\(other.node)")
            }
            all[path] = endpoint
        }
    }

    public func unregister(_ path: String, flow: String, node: String) {
        endpoints.withLock { all in
            if let e = all[path], e.flow == flow, e.node == node { all[path] = nil }
        }
    }

    public func endpoint(_ path: String) -> Endpoint? { endpoints.withLock { $0[path] } }
}

/// A request body that cannot be read: `400`, naming the line or field, and nothing of it stored.
public struct WebhookBodyError: Error, CustomStringConvertible {
    public var description: String
    /// `415` rather than `400`: the content type is not one the endpoint reads.
    public var unsupportedType: Bool
    /// `413` rather than `400`: more rows than the endpoint takes in one request.
    public var tooLarge: Bool

    public init(_ description: String, unsupportedType: Bool = false, tooLarge: Bool = false) {
        self.description = description
        self.unsupportedType = unsupportedType
        self.tooLarge = tooLarge
    }
}
