import AsyncHTTPClient
import CoreMetrics
import EnchufeCore
import Foundation
import NIOCore
import NIOHTTP1

/// An answer of an API, its body read and decoded as text.
public struct PullResponse: Sendable {
    public var status: Int
    public var contentType: String?
    public var bytes: [UInt8]
    /// The body as text (see `TextDecoding`); nil for bytes that are no text at all.
    public var text: String?
    /// The `Retry-After` header, if the answer had one.
    public var retryAfterText: String?

    public init(status: Int, contentType: String?, bytes: [UInt8], retryAfter: String? = nil) {
        self.status = status
        self.contentType = contentType
        self.bytes = bytes
        retryAfterText = retryAfter
        text = TextDecoding.decode(bytes, contentType: contentType)
    }

    /// Whether the body is an HTML page (an error page where JSON was expected).
    public var isHTML: Bool {
        if contentType?.lowercased().contains("text/html") == true { return true }
        let start = (text ?? "").drop { $0.isWhitespace }.prefix(15).lowercased()
        return start.hasPrefix("<!doctype html") || start.hasPrefix("<html")
    }

    /// The body as JSON; an HTML page or anything else that is not JSON is `malformed`.
    public func json() throws -> JSONValue {
        if let text, text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw PullError(.malformed, status: status, "an empty answer")
        }
        if isHTML { throw PullError(.malformed, status: status, "an HTML page where JSON was expected") }
        guard let text else { throw PullError(.malformed, status: status, "the body is not text (\(bytes.count) bytes)") }
        do {
            return try JSONValue.parse(text)
        } catch {
            throw PullError(.malformed, status: status, "the body is not JSON: \(error)")
        }
    }
}

/// The HTTP layer every pull connector uses (REData, ESIOS, AEMET, Datadis): a `User-Agent` naming
/// Enchufe, a timeout per request (body included), retries with backoff and jitter that honour
/// `Retry-After`, a per-host request rate shared by every node of the process, charset-aware
/// decoding, failures classified (`PullError`) and counted per node, and — in flow tests — the
/// canned answers instead of the network.
public final class PullClient: Sendable {
    public static let userAgent = "Enchufe/0.1.0 (energy community integration hub)"

    let node: String
    let type: String
    let timeout: Duration
    let retry: RetryPolicy
    let requestsPerMinute: Double?
    let maxBodyBytes: Int
    /// How the API describes a failure in a JSON body (REData's `errors[]`, AEMET's `estado`): used
    /// for answers other than 401, 403 and 429, whose status says it all.
    let errorBody: (@Sendable (JSONValue, Int) -> PullError?)?
    /// Whether a 429 is asked again (after its Retry-After); Datadis refuses a repeated query for
    /// 24 hours, so retrying it only makes things worse.
    let retriesRateLimits: Bool
    private let counters: [String: CoreMetrics.Counter]

    /// One client per node: `flow`/`node` label the metrics, `type` finds canned answers.
    public init(
        flow: String, node: String, type: String, metrics: HubMetrics, timeout: Duration = .seconds(30),
        retry: RetryPolicy = RetryPolicy(attempts: 4, backoff: .seconds(2), maxBackoff: .seconds(120)),
        requestsPerMinute: Double? = nil, maxBodyBytes: Int = 64 << 20,
        errorBody: (@Sendable (JSONValue, Int) -> PullError?)? = nil, retriesRateLimits: Bool = true
    ) {
        self.errorBody = errorBody
        self.retriesRateLimits = retriesRateLimits
        self.node = node
        self.type = type
        self.timeout = timeout
        self.retry = retry
        self.requestsPerMinute = requestsPerMinute
        self.maxBodyBytes = maxBodyBytes
        var counters: [String: CoreMetrics.Counter] = [:]
        for result in ["ok"] + PullError.Kind.allCases.map(\.rawValue) {
            counters[result] = CoreMetrics.Counter(
                label: "enchufe_pull_requests_total", dimensions: [("flow", flow), ("node", node), ("result", result)], factory: metrics.factory)
        }
        self.counters = counters
    }

    /// GETs `url` and returns a 2xx answer; anything else is a `PullError` after the retries a
    /// transient failure gets. `context` gives the clock (virtual in flow tests), the logger and the
    /// canned answers.
    public func get(_ url: URL, headers: [String: String] = [:], context: NodeContext) async throws -> PullResponse {
        let response = try await fetch(url, headers: headers, context: context)
        counters["ok"]?.increment()
        return response
    }

    /// GETs `url` and reads its JSON body with `read`. Only an answer `read` can use counts as `ok`;
    /// a body that is not JSON, or that `read` finds malformed or empty, counts as what it is.
    /// `emptyBody`: what an empty answer means for this API (default: malformed).
    public func json<T>(
        _ url: URL, headers: [String: String] = [:], context: NodeContext, emptyBody: PullError? = nil, read: (JSONValue) throws -> T
    ) async throws -> T {
        let response = try await fetch(url, headers: headers, context: context)
        do {
            if let emptyBody, (response.text ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw emptyBody }
            let value = try read(try response.json())
            counters["ok"]?.increment()
            return value
        } catch let error as PullError {
            counters[error.kind.rawValue]?.increment()
            throw error
        }
    }

    /// POSTs a form (`application/x-www-form-urlencoded`: a login) and returns a 2xx answer, counted
    /// like a GET. Canned answers stand in for it in flow tests, as for GETs.
    public func postForm(_ url: URL, form: [(String, String)], headers: [String: String] = [:], context: NodeContext) async throws -> PullResponse {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = form.map { name, value in
            "\(name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }.joined(separator: "&")
        var headers = headers
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        let response = try await fetch(url, method: .POST, body: Array(body.utf8), headers: headers, context: context)
        counters["ok"]?.increment()
        return response
    }

    /// A 2xx answer after retries; failures are counted here, successes by the caller.
    func fetch(_ url: URL, method: HTTPMethod = .GET, body: [UInt8]? = nil, headers: [String: String], context: NodeContext) async throws -> PullResponse {
        if let canned = context.cannedAnswers {
            guard let data = canned.answer(node: node, type: type, url: url) else {
                throw PullError(.upstream, "no canned answer for \(url.path) (give one in the test's fixtures by node id, path or node type)")
            }
            return PullResponse(status: 200, contentType: nil, bytes: [UInt8](data))
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await once(url, method: method, body: body, headers: headers)
            } catch let error as PullError {
                counters[error.kind.rawValue]?.increment()
                guard error.isTransient, retriesRateLimits || error.kind != .rateLimit, attempt < retry.attempts else { throw error }
                let wait = retry.delay(afterAttempt: attempt, retryAfter: error.retryAfter)
                context.logger.debug("\(url.host ?? ""): \(error); attempt \(attempt) of \(retry.attempts), next in \(DurationText.format(wait))")
                try await context.clock.sleep(for: wait)
            }
        }
    }

    /// One request, its status classified.
    func once(_ url: URL, method: HTTPMethod = .GET, body: [UInt8]? = nil, headers: [String: String]) async throws -> PullResponse {
        if let requestsPerMinute, let host = url.host { try await HostRateLimits.shared.wait(host: host, perMinute: requestsPerMinute) }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        let response: PullResponse
        let prepared = request
        do {
            response = try await withDeadline(timeout) { [maxBodyBytes] in
                // AsyncHTTPClient's own deadline a second later: the whole answer, body included, is
                // bounded by `withDeadline`, which says so clearly.
                let answer = try await HTTPClient.shared.execute(prepared, timeout: .nanoseconds(self.timeout.nanosecondsTotal + 1_000_000_000))
                let body = try await answer.body.collect(upTo: maxBodyBytes)
                return PullResponse(
                    status: Int(answer.status.code), contentType: answer.headers.first(name: "Content-Type"), bytes: Array(buffer: body),
                    retryAfter: answer.headers.first(name: "Retry-After"))
            }
        } catch let error as PullError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw PullError(.upstream, "\(url.host ?? url.absoluteString): \(error)")
        }
        return try Self.classify(response, errorBody: errorBody)
    }

    /// A 2xx answer as it is; anything else as the `PullError` it means.
    static func classify(_ response: PullResponse, errorBody: (@Sendable (JSONValue, Int) -> PullError?)? = nil) throws -> PullResponse {
        let status = response.status
        if (200..<300).contains(status) { return response }
        if ![401, 403, 429].contains(status), let errorBody, !response.isHTML, let text = response.text,
            let json = try? JSONValue.parse(text), var error = errorBody(json, status)
        {
            error.status = error.status ?? status
            if error.kind == .upstream { error.retryAfter = response.retryAfter }
            throw error
        }
        let detail = response.isHTML ? "an HTML error page" : String((response.text ?? "").prefix(300))
        switch status {
        case 401, 403:
            throw PullError(.auth, status: status, detail)
        case 429:
            throw PullError(.rateLimit, status: status, detail, retryAfter: response.retryAfter)
        case 404 where !response.isHTML:
            throw PullError(.noData, status: status, detail)
        default:
            throw PullError(.upstream, status: status, detail, retryAfter: response.retryAfter)
        }
    }
}

extension PullResponse {
    /// The `Retry-After` of the answer: seconds, or an HTTP date.
    var retryAfter: Duration? { retryAfterText.flatMap(PullResponse.parseRetryAfter) }

    public static func parseRetryAfter(_ text: String) -> Duration? {
        if let seconds = Int(text.trimmingCharacters(in: .whitespaces)) { return .seconds(max(0, seconds)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return .seconds(max(0, date.timeIntervalSinceNow))
    }
}

/// Runs `body`, or throws an `upstream` timeout when it takes longer than `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw PullError(.upstream, "no complete answer within \(DurationText.format(limit))")
        }
        group.cancelAll()
        return value
    }
}

/// Requests per minute per host, shared by every node of the process (the API counts per key and IP,
/// not per node): a request waits for its turn (GCRA: evenly spaced, no bursts).
actor HostRateLimits {
    static let shared = HostRateLimits()
    private var next: [String: ContinuousClock.Instant] = [:]

    func wait(host: String, perMinute: Double) async throws {
        let now = ContinuousClock.now
        let turn = reserve(host: host, perMinute: perMinute, now: now)
        if turn > now { try await Task.sleep(until: turn, clock: .continuous) }
    }

    /// The instant a request to `host` asked for at `now` may go: `now`, or one interval after the
    /// host's previous request, whichever is later.
    func reserve(host: String, perMinute: Double, now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let interval = Duration.seconds(60 / max(perMinute, 0.001))
        let turn = max(now, next[host] ?? now)
        next[host] = turn + interval
        return turn
    }
}
