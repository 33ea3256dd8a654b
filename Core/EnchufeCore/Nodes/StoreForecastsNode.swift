import Foundation
import Synchronization

/// `store.forecasts`: stores the readings of each message as forecasts, every issue kept.
struct StoreForecastsNode: SinkNode {
    enum Key {
        static let model = OptionKey<String?>("model", doc: "The model's name when neither the reading (tag `model`) nor the message (attribute `model`) says (default: FLOW/NODE of the reading's source).")
        static let retention = OptionKey<Duration>(
            "retention", default: .seconds(400 * 86_400), doc: "How long issues are kept; older ones are deleted about once an hour.")
        static let batchSize = OptionKey<Int>("batch_size", default: 500, doc: "Most messages written in one transaction.")
        static let flushInterval = OptionKey<Duration>("flush_interval", default: .seconds(1), doc: "Longest wait for a batch to fill once its first message is in.")
    }

    static let spec = NodeSpec(
        type: "store.forecasts", kind: .sink,
        summary: "Stores forecasts apart from the readings, every issue kept (vintages), for /api/v1/forecasts and its accuracy",
        doc: """
            Each reading of a message is a forecast of that series, quantity and interval. It was
            issued at the reading's tag `issued_at`, else the message's attribute `issued_at`, else
            now (ISO-8601), by the model its tag `model`, the message's attribute `model`, the
            option `model` or else its source names. Forecasts go to a table of their own: they never
            replace nor pass for a measured reading, and every issue is kept, so that
            `GET /api/v1/forecasts` can give the latest or the one current at an instant and
            `GET /api/v1/forecasts/accuracy` the errors per horizon. A forecast the store cannot hold
            (a time outside 1970–2099, a value that is not finite) sends its message to the dead
            letters. Issues older than `retention` are deleted about once an hour.
            """,
        options: [Key.model.spec, Key.retention.spec, Key.batchSize.spec, Key.flushInterval.spec],
        example: """
            - id: forecasts
              type: store.forecasts
              retention: 90d
            """,
        check: { options in
            options[Key.batchSize] < 1 ? [OptionProblem(option: "batch_size", "must be at least 1")] : []
        },
        make: { context in
            .sink(StoreForecastsNode(
                batching: Batching(size: context.options[Key.batchSize], flushInterval: context.options[Key.flushInterval]),
                model: context.options[Key.model], retention: context.options[Key.retention].seconds))
        })

    let batching: Batching
    let model: String?
    let retention: TimeInterval
    let purges = Purges()

    /// When the old issues were last deleted.
    final class Purges: Sendable {
        let last = Mutex<Date?>(nil)
    }

    func write(_ batch: [Message], _ context: NodeContext) async throws {
        let now = context.clock.now()
        var forecasts: [Forecast] = []
        for message in batch {
            guard !message.readings.isEmpty else {
                throw PermanentError("the message carries no readings to store as forecasts")
            }
            for var r in message.readings {
                if r.tenant.isEmpty { r.tenant = context.tenant }
                if r.source.isEmpty { r.source = context.readingSource }
                let issuedText = r.tags["issued_at"] ?? message.attributes["issued_at"]
                guard let issued = issuedText.map({ ISO8601.date($0) }) ?? now else {
                    throw PermanentError("issued_at '\(issuedText ?? "")' of \(r.series) is not an ISO-8601 instant")
                }
                let name = r.tags["model"] ?? message.attributes["model"] ?? model ?? r.source
                r.quality = .forecast
                forecasts.append(Forecast(r, issuedAt: issued, model: name))
            }
        }
        try await context.store.saveForecasts(forecasts)
        let due = purges.last.withLock { last in
            guard last.map({ now.timeIntervalSince($0) >= 3600 }) ?? true else { return false }
            last = now
            return true
        }
        if due { _ = try? await context.store.purgeForecasts(issuedBefore: now.addingTimeInterval(-retention)) }
    }
}
