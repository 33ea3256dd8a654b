import EnchufeCore
import Foundation

/// Why a request of a pull connector failed, in the classes the hub counts and shows:
/// - `auth`: the key or the login was refused (401/403); retrying does not help until someone fixes it;
/// - `rateLimit`: the API said slow down (429), with its `Retry-After` if it gave one;
/// - `noData`: the API has nothing for this request (a 404 it uses for "no data", AEMET's `estado`);
/// - `upstream`: the API failed (5xx, a timeout, a refused connection, an HTML error page);
/// - `malformed`: the answer came but cannot be read (not JSON, a truncated body, wrong fields).
public struct PullError: Error, CustomStringConvertible, RetryAfterError {
    public enum Kind: String, Sendable, CaseIterable {
        case auth, rateLimit = "rate_limit", noData = "no_data", upstream, malformed
    }

    public var kind: Kind
    public var status: Int?
    public var message: String
    public var retryAfter: Duration?

    public init(_ kind: Kind, status: Int? = nil, _ message: String, retryAfter: Duration? = nil) {
        self.kind = kind
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    /// Whether a later attempt may succeed: rate limits, and upstream failures other than a client
    /// error (a 4xx asked again the same way gets the same answer).
    public var isTransient: Bool { kind == .rateLimit || (kind == .upstream && !isClientError) }

    /// The API refused the request itself (a 4xx other than 429): asked again the same way, it gives
    /// the same answer.
    var isClientError: Bool { (status.map { (400..<500).contains($0) && $0 != 429 }) ?? false }

    public var description: String {
        "\(kind.rawValue)\(status.map { " (HTTP \($0))" } ?? ""): \(message)"
    }
}
