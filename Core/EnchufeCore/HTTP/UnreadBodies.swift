import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// Reads whatever a route left of a request's body before its answer goes out. Most HTTP clients
/// (Python's urllib and requests, Java's) send a whole body before they read an answer unless they
/// asked `Expect: 100-continue`, and the server does not read past what a route took: a route that
/// answered early (a 401, a 413) left such a client blocked on a full socket until it timed out.
/// Up to `discardedAtMost` bytes are read and dropped; past that the hub stops reading, and the
/// connection closes once the answer is written.
/// It wraps the whole router, so that requests no route serves (404, 405) are read too.
struct UnreadBodies<Routes: HTTPResponder>: HTTPResponder where Routes.Context == HubRequestContext {
    typealias Context = HubRequestContext

    static var discardedAtMost: Int { 64 << 20 }

    let routes: Routes

    /// Methods the API answers at all; any other (TRACE, CONNECT, ...) is 405 whatever the path.
    static var methods: Set<HTTPRequest.Method> { [.get, .head, .post, .put, .delete, .options, .patch] }

    func respond(to request: Request, context: HubRequestContext) async throws -> Response {
        if !Self.methods.contains(request.method) {
            var r = HTTPServer.problem(.methodNotAllowed, title: "Method not allowed", detail: "\(request.method) is not served here")
            r.headers[.allow] = "GET, HEAD, POST, PUT, DELETE"
            r.headers[.connection] = "close"
            context.stopReading()
            return r
        }
        let body = TrackedBody(request.body)
        var request = request
        request.body = RequestBody(asyncSequence: body)
        var response = try await routes.respond(to: request, context: context)
        if !body.finished {
            var dropped = 0
            do {
                while let chunk = try await body.next() {
                    dropped += chunk.readableBytes
                    if dropped > Self.discardedAtMost {
                        context.stopReading()
                        response.headers[.connection] = "close"
                        break
                    }
                }
            } catch {
                context.stopReading()
            }
        }
        return response
    }
}

/// A request body that remembers how far it was read, so that the rest can be read after the route.
final class TrackedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    private struct State: @unchecked Sendable {
        var iterator: RequestBody.AsyncIterator?
        var finished = false
    }

    private let body: RequestBody
    // One reader at a time: the route, then the middleware after it.
    private let state = Mutex(State())

    init(_ body: RequestBody) {
        self.body = body
    }

    var finished: Bool { state.withLock { $0.finished } }

    func next() async throws -> ByteBuffer? {
        var iterator = state.withLock { s in s.iterator.take() } ?? body.makeAsyncIterator()
        let chunk = try await iterator.next()
        state.withLock { s in
            s.iterator = iterator
            if chunk == nil { s.finished = true }
        }
        return chunk
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let body: TrackedBody
        mutating func next() async throws -> ByteBuffer? { try await body.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
}
