import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// A local HTTP server standing in for an external API (REData, ESIOS, AEMET, Datadis) in tests: each
/// request is answered by the test's `handler` — a recorded payload, or one of the API's failures
/// (401, 429 with or without `Retry-After`, 500, an HTML error page, an answer too slow, a body in
/// ISO-8859-15). It listens on 127.0.0.1 on a free port and records every request it got.
public final class FixtureServer: Sendable {
    public struct Request: Sendable {
        public var method = "GET"
        public var path: String
        public var query: String?
        /// Header names in lower case (`host` included).
        public var headers: [String: String]
        public var body = ""
    }

    public struct Answer: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: [UInt8]
        /// Waits this long before answering (to make a client time out).
        public var delay: Duration?
        /// Sends only this many bytes of the body, then drops the connection (a truncated answer).
        public var truncateAfter: Int?

        public init(
            status: Int = 200, headers: [String: String] = ["Content-Type": "application/json"], body: [UInt8], delay: Duration? = nil,
            truncateAfter: Int? = nil
        ) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
            self.truncateAfter = truncateAfter
        }

        public static func json(_ text: String, status: Int = 200) -> Answer {
            Answer(status: status, body: Array(text.utf8))
        }
    }

    public let port: Int
    private let task: Task<Void, any Error>
    private let log: RequestLog

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// Every request so far, in order.
    public var requests: [Request] { log.entries.withLock { $0 } }

    public static func start(_ handler: @escaping @Sendable (Request) async -> Answer) async throws -> FixtureServer {
        let log = RequestLog()
        let router = Router()
        let respond: @Sendable (Hummingbird.Request, BasicRequestContext) async throws -> Response = { request, _ in
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            if let authority = request.head.authority { headers["host"] = authority }  // HTTP/1.1's Host
            let body = try await request.body.collect(upTo: 1 << 20)
            let received = Request(
                method: request.method.rawValue, path: request.uri.path, query: request.uri.query, headers: headers,
                body: String(buffer: body))
            log.entries.withLock { $0.append(received) }
            let answer = await handler(received)
            if let delay = answer.delay { try? await Task.sleep(for: delay) }
            var fields = HTTPFields()
            for (name, value) in answer.headers { if let field = HTTPField.Name(name) { fields[field] = value } }
            if let cut = answer.truncateAfter {
                // Chunked: part of the body, then the connection drops before the last chunk.
                let part = Array(answer.body.prefix(cut))
                return Response(
                    status: .init(code: answer.status), headers: fields,
                    body: .init { writer in
                        try await writer.write(ByteBuffer(bytes: part))
                        throw TruncatedAnswer()
                    })
            }
            return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
        router.get("**", use: respond)
        router.post("**", use: respond)
        router.put("**", use: respond)
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "fixtures"),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) })
        let task = Task { try await app.runService() }
        var port = 0
        for await p in portStream {
            port = p
            break
        }
        return FixtureServer(port: port, task: task, log: log)
    }

    private init(port: Int, task: Task<Void, any Error>, log: RequestLog) {
        self.port = port
        self.task = task
        self.log = log
    }

    public func stop() { task.cancel() }
}

struct TruncatedAnswer: Error {}

final class RequestLog: Sendable {
    let entries = Mutex<[FixtureServer.Request]>([])
}
