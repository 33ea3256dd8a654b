import Foundation

/// How a failing node is retried before its message goes to the `errors` port or the dead letters:
/// exponential backoff with jitter, honouring a `Retry-After` the error carries.
public struct RetryPolicy: Sendable, Equatable {
    public var attempts: Int
    public var backoff: Duration
    public var maxBackoff: Duration
    /// Fraction of each delay drawn at random (0: none, 1: anywhere between 0 and the delay).
    public var jitter: Double

    public init(
        attempts: Int = Key.attempts.fallback, backoff: Duration = Key.backoff.fallback, maxBackoff: Duration = Key.maxBackoff.fallback,
        jitter: Double = Key.jitter.fallback
    ) {
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

    /// The options of `retry:`, shared by every node and by the flow's default.
    public enum Key {
        public static let attempts = OptionKey<Int>("attempts", default: 5, doc: "Attempts in all, the first included.", example: 5)
        public static let backoff = OptionKey<Duration>("backoff", default: .seconds(1), doc: "Wait after the first failure; doubles after each further one.")
        public static let maxBackoff = OptionKey<Duration>("max_backoff", default: .seconds(60), doc: "Longest wait between attempts.")
        public static let jitter = OptionKey<Double>(
            "jitter", default: 0.2, doc: "Fraction of each wait drawn at random (0 to 1), so retries of many nodes spread out.")
    }

    static let optionSpecs: [OptionSpec] = [Key.attempts.spec, Key.backoff.spec, Key.maxBackoff.spec, Key.jitter.spec]

    /// A node's `retry:` over the flow's: what the node leaves out is the flow's.
    init(options: NodeOptions, fallback: RetryPolicy) {
        self.init(
            attempts: options.has(Key.attempts) ? options[Key.attempts] : fallback.attempts,
            backoff: options.has(Key.backoff) ? options[Key.backoff] : fallback.backoff,
            maxBackoff: options.has(Key.maxBackoff) ? options[Key.maxBackoff] : fallback.maxBackoff,
            jitter: options.has(Key.jitter) ? options[Key.jitter] : fallback.jitter)
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
