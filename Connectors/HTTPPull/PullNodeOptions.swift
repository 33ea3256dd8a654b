import EnchufeCore
import Foundation

/// The options every node of one pull API shares, with that API's defaults, and the client they
/// configure. An API declares its defaults once (`static let pull = PullNodeOptions(...)`); its node
/// types list `pull.specs` and read the same keys.
public struct PullNodeOptions: Sendable {
    public let baseURL: OptionKey<String>
    public let timeout: OptionKey<Duration>
    public let requestsPerMinute: OptionKey<Double>
    public let requestAttempts: OptionKey<Int>
    public let requestBackoff: OptionKey<Duration>
    public let maxRequests: OptionKey<Int>
    /// Whether the nodes take `day`/`from`/`until` (`DayWindow.Key`).
    public let days: Bool

    public init(
        baseURL: String, requestsPerMinute: Double, timeout: Duration = .seconds(30), backoff: Duration = .seconds(2),
        days: Bool = true, maxRequests: Int = 60
    ) {
        self.baseURL = OptionKey("base_url", default: baseURL, doc: "Where the API is (tests point it at a local server).")
        self.timeout = OptionKey("timeout", default: timeout, doc: "Longest wait for one complete answer, body included.")
        self.requestsPerMinute = OptionKey(
            "requests_per_minute", default: requestsPerMinute, doc: "Requests per minute to this API's host, shared by every node of the hub.")
        requestAttempts = OptionKey(
            "request_attempts", default: 4,
            doc: "Attempts per request when the API is rate limiting (429) or failing (5xx, timeouts); other failures are not retried.")
        requestBackoff = OptionKey(
            "request_backoff", default: backoff,
            doc: "Wait after a failed attempt, doubling (with jitter) after each further one; the API's Retry-After, when it sends one, wins.")
        self.maxRequests = OptionKey(
            "max_requests", default: maxRequests, doc: "At most this many requests per trigger; a longer back-fill goes on at the next trigger.")
        self.days = days
    }

    /// `base_url`, `timeout`, `requests_per_minute`, `request_attempts`, `request_backoff`,
    /// `max_requests`, and `day`/`from`/`until` when the API's nodes take days.
    public var specs: [OptionSpec] {
        [baseURL.spec, timeout.spec, requestsPerMinute.spec, requestAttempts.spec, requestBackoff.spec, maxRequests.spec]
            + (days ? [DayWindow.Key.day.spec, DayWindow.Key.from.spec, DayWindow.Key.until.spec] : [])
    }

    /// The API's base URL without a trailing slash.
    public func base(_ options: NodeOptions) -> String { Self.trimmed(options[baseURL]) }

    /// A base URL without its trailing slashes.
    public static func trimmed(_ url: String) -> String {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// The client of a node, configured by its options.
    /// `retriesRateLimits: false` for an API that punishes asking again (a ban, a refusal for hours).
    public func client(
        _ build: NodeBuildContext, type: String, errorBody: (@Sendable (JSONValue, Int) -> PullError?)? = nil, retriesRateLimits: Bool = true
    ) -> PullClient {
        let o = build.options
        let backoff = o[requestBackoff]
        return PullClient(
            flow: build.flow, node: build.node, type: type, metrics: build.metrics, timeout: o[timeout],
            retry: RetryPolicy(attempts: o[requestAttempts], backoff: backoff, maxBackoff: max(backoff * 8, .seconds(120))),
            requestsPerMinute: o[requestsPerMinute], errorBody: errorBody, retriesRateLimits: retriesRateLimits)
    }

    /// A URL from a base and a path with its query, percent-encoding what needs it.
    public static func url(_ base: String, _ path: String, query: [(String, String)] = []) throws -> URL {
        guard var components = URLComponents(string: base + path) else { throw PermanentError("'\(base)\(path)' is not a URL") }
        if !query.isEmpty {
            components.percentEncodedQuery = query.map { name, value in
                "\(escape(name))=\(escape(value))"
            }.joined(separator: "&")
        }
        guard let url = components.url else { throw PermanentError("'\(base)\(path)' is not a URL") }
        return url
    }

    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
