import EnchufeCore
import Foundation

/// One pull of a connector node through its periods (days, months...), with the checkpoints that
/// make pulls resumable:
/// - a period already fetched *completely* (every value it can have) is skipped, so a restart or
///   the next trigger asks only for what is missing, and gaps left by failures are back-filled;
/// - a period is recorded as fetched only once every reading of it is committed (the checkpoint is
///   written after the sinks' commit), so nothing fetched is lost if the hub stops in between;
/// - a period still open (today, prices not yet published) is fetched again next time; its
///   readings are upserts, so re-fetching stores nothing twice;
/// - at most `maxRequests` periods per trigger, oldest first: a long back-fill advances step by
///   step instead of hammering the API.
///
/// Failures: `noData` and `malformed` skip the period; `auth`, `rateLimit` and `upstream` end the
/// pull (the rest waits for the next trigger). What was fetched is sent on; a pull that fetched
/// nothing and failed is the trigger's failure (the errors port, or a dead letter naming why).
public struct PullRun: Sendable {
    public let context: NodeContext
    public let maxRequests: Int
    public private(set) var requests = 0
    public private(set) var messages: [Message] = []
    public private(set) var failures: [(period: String, error: PullError)] = []
    private var complete: [String: Int] = [:]
    private var skipped = 0
    private var left = 0
    private var stopped = false

    public init(context: NodeContext, maxRequests: Int = 60) {
        self.context = context
        self.maxRequests = maxRequests
    }

    static func checkpointKey(_ period: String) -> String { "fetched:" + period }

    /// A pull of one request per item (a day, a station), oldest first: each item not recorded
    /// before is fetched (`complete`: checkpointed once committed) until the pull stops or spends
    /// its requests; then `finish`.
    public static func each<Item>(
        _ items: [Item], context: NodeContext, maxRequests: Int, period: (Item) -> String,
        fetch: (Item) async throws -> (readings: [Reading], complete: Bool)
    ) async throws -> [Output] {
        var run = PullRun(context: context, maxRequests: maxRequests)
        for item in items {
            let name = period(item)
            guard try await run.shouldFetch(name) else { continue }
            do {
                let (readings, complete) = try await fetch(item)
                run.fetched(name, readings: readings, complete: complete)
            } catch let error as PullError {
                guard run.failed(name, error) else { break }
            }
        }
        return try run.finish()
    }

    /// Whether to fetch `period` now: not when it was fetched completely before, nor once the pull
    /// has stopped or spent its requests (counted as left for the next trigger).
    public mutating func shouldFetch(_ period: String) async throws -> Bool {
        if try await isRecorded(period) {
            skipped += 1
            return false
        }
        return mayRequest()
    }

    /// Whether `period` was fetched completely before (and its readings committed).
    public func isRecorded(_ period: String) async throws -> Bool {
        try await context.checkpoint(Self.checkpointKey(period)) != nil
    }

    /// How many more requests may go in this pull.
    public var remaining: Int { stopped ? 0 : max(0, maxRequests - requests) }

    /// `count` periods that may be fetched but not in this pull (no requests left): counted as left
    /// for the next trigger.
    public mutating func leave(_ count: Int) { left += count }

    /// Whether one more request may go now (for a request covering several periods whose records
    /// the caller checked itself).
    public mutating func mayRequest() -> Bool {
        if stopped || requests >= maxRequests {
            left += 1
            return false
        }
        requests += 1
        return true
    }

    /// The readings of a period; `complete`: it cannot change any more, so it is checkpointed once committed.
    public mutating func fetched(_ period: String, readings: [Reading], complete isComplete: Bool, payload: JSONValue? = nil) {
        fetched(period, readings: readings, completing: isComplete ? [period] : [], payload: payload)
    }

    /// The readings of one request (`name`) that completes the periods `completing` (each is
    /// checkpointed once the readings are committed).
    public mutating func fetched(_ name: String, readings: [Reading], completing: [String], payload: JSONValue? = nil) {
        if !readings.isEmpty {
            messages.append(Message(
                payload: payload ?? ["period": .string(name), "readings": .number(Double(readings.count)), "complete": .bool(!completing.isEmpty)],
                topic: name, readings: readings))
        }
        for period in completing { complete[period] = readings.count }
    }

    /// A period that failed; returns whether the pull goes on to the next period. `goOn` overrides
    /// the rule for an API whose failures concern one period only (Datadis' 500 on a month around a
    /// contract change).
    @discardableResult
    public mutating func failed(_ period: String, _ error: PullError, goOn: Bool? = nil) -> Bool {
        if let goOn, error.kind != .noData {
            let rest = goOn ? "" : "; the pull stops here and the rest waits for the next trigger"
            context.logger.warning("\(period): \(error)\(rest)")
            failures.append((period, error))
            stopped = stopped || !goOn
            return goOn
        }
        switch error.kind {
        case .noData:
            context.logger.info("\(period): no data (\(error.message))")
            return true
        case .malformed:
            context.logger.warning("\(period): \(error)")
            failures.append((period, error))
            return true
        case .auth, .rateLimit, .upstream:
            context.logger.warning("\(period): \(error); the pull stops here and the rest waits for the next trigger")
            failures.append((period, error))
            stopped = true
            return false
        }
    }

    /// Ends the pull: the messages to send on, carrying one delivery whose commit writes the
    /// checkpoints of the complete periods. Throws when it failed and fetched nothing.
    public func finish() throws -> [Output] {
        if left > 0 { context.logger.notice("\(left) period(s) left for the next trigger (at most \(maxRequests) requests per trigger)") }
        if messages.isEmpty, let (period, error) = failures.first {
            let more = failures.count > 1 ? " (and \(failures.count - 1) more failed period(s))" : ""
            throw PermanentError("pull of \(period) failed: \(error)\(more)")
        }
        for (period, error) in failures {
            context.logger.warning("pull of \(period) failed and is asked again next time: \(error)")
        }
        let (delivery, carried) = Delivery.tracking(messages)
        let complete = self.complete
        if !complete.isEmpty {
            let context = self.context
            let at = ISO8601.string(context.clock.now())
            context.afterCommit.run(after: delivery) {
                for (period, count) in complete.sorted(by: { $0.key < $1.key }) {
                    let value: JSONValue = ["fetched_at": .string(at), "readings": .number(Double(count))]
                    do {
                        try await context.saveCheckpoint(Self.checkpointKey(period), value.jsonText())
                    } catch {
                        context.logger.warning("checkpoint of \(period) not saved (it will be fetched again): \(error)")
                    }
                }
            }
        }
        if skipped > 0 { context.logger.debug("\(skipped) period(s) already fetched, skipped") }
        return carried.map(Output.out)
    }
}
