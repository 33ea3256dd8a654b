import CoreMetrics
import Foundation

/// `store.readings`: upserts the readings of each message into the hub's store, in batches.
struct StoreReadingsNode: SinkNode {
    enum Key {
        static let batchSize = OptionKey<Int>("batch_size", default: 500, doc: "Most messages written in one transaction.")
        static let flushInterval = OptionKey<Duration>("flush_interval", default: .seconds(1), doc: "Longest wait for a batch to fill once its first message is in.")
    }

    static let spec = NodeSpec(
        type: "store.readings", kind: .sink,
        summary: "Upserts readings into the hub's store (SQLite or PostgreSQL), in batches",
        doc: """
            Writes every reading a message carries; a message without readings whose payload is itself a
            reading (series, quantity, ts, value...) is stored as one. Anything else is an error, sent to
            the `errors` port or the dead letters, without holding back the rest of its batch; so is a
            reading the store cannot hold (a time outside 1970–2099, a value that is not finite, an
            overlong or control-character name), which the store refuses before writing anything.
            Upsert rules: the same value changes nothing; a changed value bumps `revision`; an `estimated`
            or `forecast` value never replaces a `measured` one. Sources are acknowledged only after the
            batch's transaction commits.
            """,
        options: [
            Key.batchSize.spec,
            Key.flushInterval.spec,
        ],
        example: """
            - id: store
              type: store.readings
              batch_size: 1000
            """,
        check: { options in
            options[Key.batchSize] < 1 ? [OptionProblem(option: "batch_size", "must be at least 1")] : []
        },
        make: { context in
            let labels = [("flow", context.flow), ("node", context.node)]
            func stored(_ result: String) -> CoreMetrics.Counter {
                CoreMetrics.Counter(label: "enchufe_readings_stored_total", dimensions: labels + [("result", result)], factory: context.metrics.factory)
            }
            return .sink(StoreReadingsNode(
                batching: Batching(
                    size: context.options[Key.batchSize],
                    flushInterval: context.options[Key.flushInterval]),
                inserted: stored("inserted"), updated: stored("updated"), unchanged: stored("unchanged")))
        })

    let batching: Batching
    let inserted: CoreMetrics.Counter
    let updated: CoreMetrics.Counter
    let unchanged: CoreMetrics.Counter

    func write(_ batch: [Message], _ context: NodeContext) async throws {
        var readings: [Reading] = []
        for message in batch {
            if !message.readings.isEmpty {
                readings += message.readings
            } else if var reading = Reading(json: message.payload) {
                if reading.tenant.isEmpty { reading.tenant = context.tenant }
                if reading.source.isEmpty { reading.source = context.readingSource }
                readings.append(reading)
            } else {
                throw PermanentError("the message carries no readings (map JSON payloads to readings with a 'readings' node first)")
            }
        }
        let summary = try await context.store.upsert(readings)
        inserted.increment(by: summary.inserted)
        updated.increment(by: summary.updated)
        unchanged.increment(by: summary.unchanged)
    }
}
