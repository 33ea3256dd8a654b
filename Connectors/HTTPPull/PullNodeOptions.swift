import EnchufeCore
import Foundation

/// The options every pull connector node shares, and the client they configure.
public enum PullNodeOptions {
    /// `base_url`, `timeout`, `requests_per_minute`, `max_requests`, `day`/`from`/`to` (when `days`).
    public static func specs(
        baseURL: String, requestsPerMinute: Double, timeout: String = "30s", backoff: String = "2s", days: Bool = true,
        maxRequests: Int = 60
    ) -> [OptionSpec] {
        var specs = [
            OptionSpec("base_url", .string, default: .string(baseURL), doc: "Where the API is (tests point it at a local server)."),
            OptionSpec("timeout", .duration, default: .string(timeout), doc: "Longest wait for one complete answer, body included."),
            OptionSpec(
                "requests_per_minute", .number, default: .number(requestsPerMinute),
                doc: "Requests per minute to this API's host, shared by every node of the hub."),
            OptionSpec(
                "request_attempts", .integer, default: 4,
                doc: "Attempts per request when the API is rate limiting (429) or failing (5xx, timeouts); other failures are not retried."),
            OptionSpec(
                "request_backoff", .duration, default: .string(backoff),
                doc: "Wait after a failed attempt, doubling (with jitter) after each further one; the API's Retry-After, when it sends one, wins."),
            OptionSpec(
                "max_requests", .integer, default: .number(Double(maxRequests)),
                doc: "At most this many requests per trigger; a longer back-fill goes on at the next trigger."),
        ]
        if days {
            specs += [
                OptionSpec("day", .string, doc: "One day: today, tomorrow, yesterday, -7d / +1d, or YYYY-MM-DD.", example: "tomorrow"),
                OptionSpec("from", .string, doc: "First day of a range (same forms as `day`).", example: "-7d"),
                OptionSpec(
                    "until", .string,
                    doc: "Last day of the range, inclusive (default: today). (`to` is the key that wires a node, so the end of a range is `until`.)",
                    example: "today"),
            ]
        }
        return specs
    }

    /// The API's base URL without a trailing slash.
    public static func baseURL(_ options: NodeOptions, default fallback: String) -> String {
        var base = options.string("base_url") ?? fallback
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// The client of a node, configured by its options.
    public static func client(
        _ build: NodeBuildContext, type: String, requestsPerMinute: Double, backoff: Duration = .seconds(2),
        errorBody: (@Sendable (JSONValue, Int) -> PullError?)? = nil
    ) -> PullClient {
        let o = build.options
        let backoff = o.duration("request_backoff") ?? backoff
        return PullClient(
            flow: build.flow, node: build.node, type: type, metrics: build.metrics,
            timeout: o.duration("timeout") ?? .seconds(30),
            retry: RetryPolicy(attempts: o.int("request_attempts") ?? 4, backoff: backoff, maxBackoff: max(backoff * 8, .seconds(120))),
            requestsPerMinute: build.options.double("requests_per_minute") ?? requestsPerMinute, errorBody: errorBody)
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
