import Foundation

/// How a failing node is retried before its message goes to the `errors` port or the dead letters:
/// exponential backoff with jitter, honouring a `Retry-After` the error carries.
public struct RetryPolicy: Sendable, Equatable {
    public var attempts: Int
    public var backoff: Duration
    public var maxBackoff: Duration
    /// Fraction of each delay drawn at random (0: none, 1: anywhere between 0 and the delay).
    public var jitter: Double

    public init(attempts: Int = 5, backoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(60), jitter: Double = 0.2) {
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.jitter = min(1, max(0, jitter))
    }

    public static let `default` = RetryPolicy()

    /// The wait before attempt `attempt + 1`, after `attempt` failures (1-based).
    public func delay(afterAttempt attempt: Int, retryAfter: Duration? = nil, random: Double = Double.random(in: 0..<1)) -> Duration {
        if let retryAfter { return min(retryAfter, maxBackoff * 10) }
        let exponent = min(attempt - 1, 30)
        let base = min(backoff * (1 << exponent), maxBackoff)
        return base * (1 - jitter * random)
    }

    /// The option spec of `retry:`, shared by every node and by the flow's default.
    static let optionSpecs: [OptionSpec] = [
        OptionSpec("attempts", .integer, default: 5, doc: "Attempts in all, the first included.", example: 5),
        OptionSpec("backoff", .duration, default: "1s", doc: "Wait after the first failure; doubles after each further one."),
        OptionSpec("max_backoff", .duration, default: "60s", doc: "Longest wait between attempts."),
        OptionSpec("jitter", .number, default: 0.2, doc: "Fraction of each wait drawn at random (0 to 1), so retries of many nodes spread out."),
    ]

    init(options: NodeOptions, fallback: RetryPolicy) {
        self.init(
            attempts: options.int("attempts") ?? fallback.attempts,
            backoff: options.duration("backoff") ?? fallback.backoff,
            maxBackoff: options.duration("max_backoff") ?? fallback.maxBackoff,
            jitter: options.double("jitter") ?? fallback.jitter)
    }
}

/// An error that says how long to wait before trying again (an HTTP 429's `Retry-After`).
public protocol RetryAfterError: Error {
    var retryAfter: Duration? { get }
}

/// An error retrying cannot fix (a malformed payload): the message goes straight to `errors` or the dead letters.
public struct PermanentError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A server the hub depends on (the store, a broker) cannot be reached right now. The engine retries
/// such failures for as long as the server is away, with backoff, instead of failing the message:
/// the node waits, its input queue fills, and backpressure holds the sources. Nothing is dead-lettered
/// or acknowledged meanwhile.
public struct UnavailableError: Error, CustomStringConvertible {
    /// What is unavailable: `PostgreSQL at db:5432`, `MQTT broker ...`.
    public var service: String
    public var reason: String

    public init(service: String, reason: String) {
        self.service = service
        self.reason = reason
    }

    public var description: String { "\(service) is unavailable: \(reason)" }
}
