import Foundation

// Transforms and sinks: each takes batches from its input queue and sends what it makes on as
// batches, so the engine's costs (queues, counters, status, claims) are paid per batch, not per
// message. A message's delivery is still tracked alone: one that fails is retried, sent to the
// errors port or dead-lettered alone, and its source is told only once everything it made is committed.
extension FlowRunner {
    /// The most messages a transform takes from its queue at a time.
    static let transformBatch = 256

    /// Sends messages out of `port`, as one batch. Each holds one claim on its delivery, which
    /// passes to the copies sent (or is released if the port is not wired). When the flow is
    /// stopping, the claims of what could not be sent are released as failed.
    func route(_ messages: consuming [Message], from node: RunningNode, port: String) async throws {
        guard !messages.isEmpty else { return }
        if messages.contains(where: needsStamp) {
            for i in messages.indices { stampReadings(&messages[i], from: node) }
        }
        if node.tap.isWatched {
            for i in messages.indices { node.tap.publish(messages[i], port: port) }
        }
        let targets = node.outputs[port] ?? []
        guard !targets.isEmpty else {
            for i in messages.indices { messages[i].delivery?.release() }
            return
        }
        if targets.count > 1 {
            for i in messages.indices { messages[i].delivery?.retain(targets.count - 1) }
        }
        for (i, queue) in targets.enumerated() {
            // The last target gets the batch itself (its only reference), the others copies.
            var sending = i == targets.count - 1 ? BoundedQueue.take(&messages) : copy messages
            do {
                try await queue.send(&sending)
            } catch {
                for m in sending {
                    for _ in i..<targets.count { m.delivery?.release(failure: "the flow stopped before the message was delivered") }
                }
                throw error
            }
        }
    }

    /// Whether a message has readings without their tenant or source, which the engine fills in.
    func needsStamp(_ message: Message) -> Bool {
        message.readings.contains(where: { $0.tenant.isEmpty || $0.source.isEmpty })
    }

    func stampReadings(_ message: inout Message, from node: RunningNode) {
        guard needsStamp(message) else { return }
        for i in message.readings.indices {
            if message.readings[i].tenant.isEmpty { message.readings[i].tenant = definition.tenant }
            if message.readings[i].source.isEmpty { message.readings[i].source = node.readingSource }
        }
    }

    // MARK: Transforms

    func runTransform(_ transform: any TransformNode, _ node: RunningNode) async {
        guard let input = node.input else { return }
        reading: while true {
            let next: BoundedQueue<Message>.Next
            if let deadline = transform.flushDeadline() {
                let token = batchTokens.add(1, ordering: .relaxed).newValue
                let timer = Task { [clock = environment.clock] in
                    try? await clock.sleep(until: deadline)
                    input.interrupt(token: token)
                }
                next = await input.next(upTo: Self.transformBatch, token: token)
                timer.cancel()
            } else {
                next = await input.next(upTo: Self.transformBatch)
            }
            switch consume next {  // the batch taken whole: changed where it lies, not copied first
            case .batch(let messages):
                await process(consume messages, with: transform, node)
            case .interrupted:
                if Task.isCancelled { break reading }
                await flush(transform, node, final: false)
            case .finished:
                await flush(transform, node, final: true)
                break reading
            }
        }
        if Task.isCancelled { await flush(transform, node, final: true) }
        abandonQueued(node)
    }

    /// Runs a batch through a transform and routes what it made, port by port, in order. A node
    /// that changes messages where they lie (`InPlaceTransformNode`) or takes whole batches
    /// (`BatchTransformNode`) gets the batch at once; if that fails, or for any other node, each
    /// message is processed alone, and one that fails takes the slow way (retries, then the errors
    /// port or the dead letters) without holding up the rest.
    func process(_ batch: consuming [Message], with transform: any TransformNode, _ node: RunningNode) async {
        if let inPlace = transform as? any InPlaceTransformNode, !batch.contains(where: { $0.lease != nil }) {
            await process(consume batch, inPlace: inPlace, node)
            return
        }
        node.metrics.countIn(batch.count)
        let started = ContinuousClock.now
        var outputs = RoutedOutputs()
        var whole: [[Output]]?
        if let batchTransform = transform as? any BatchTransformNode, batch.count > 1, !batch.contains(where: { $0.lease != nil }) {
            whole = try? await batchTransform.process(batch: batch, node.context)
            if whole?.count != batch.count { whole = nil }
        }
        for (i, message) in batch.enumerated() {
            if let whole {
                outputs.add(whole[i], madeFrom: message)
                continue
            }
            do {
                let made = try await withLease(message.lease) { try await transform.process(message, node.context) }
                outputs.add(made, madeFrom: message)
            } catch {
                await retry(message, failedWith: error, transform, node, into: &outputs)
            }
        }
        node.metrics.processing.recordNanoseconds((ContinuousClock.now - started).nanosecondsTotal)
        node.metrics.status.succeeded()
        node.metrics.countOut(outputs.count)
        for (port, messages) in outputs.take() { try? await route(messages, from: node, port: port) }
    }

    /// Runs a batch through a node that changes messages where they lie: no message is copied, the
    /// ones dropped are done, the ones kept go out in order, and one that failed takes the slow way
    /// after the others have been gone through.
    private func process(_ batch: consuming [Message], inPlace transform: any InPlaceTransformNode, _ node: RunningNode) async {
        node.metrics.countIn(batch.count)
        let started = ContinuousClock.now
        var kept = 0
        var failures: [(message: Message, error: any Error)] = []
        for i in batch.indices {
            do {
                guard try transform.apply(&batch[i], node.context) else {
                    batch[i].delivery?.release()
                    continue
                }
                if kept != i { batch.swapAt(kept, i) }
                kept += 1
            } catch {
                failures.append((batch[i], error))
            }
        }
        batch.removeLast(batch.count - kept)
        var outputs = RoutedOutputs(out: consume batch)
        for failure in failures { await retry(failure.message, failedWith: failure.error, transform, node, into: &outputs) }
        node.metrics.processing.recordNanoseconds((ContinuousClock.now - started).nanosecondsTotal)
        node.metrics.status.succeeded()
        node.metrics.countOut(outputs.count)
        for (port, messages) in outputs.take() { try? await route(messages, from: node, port: port) }
    }

    /// The slow way for a message whose first attempt failed with `error`: the retries go on from
    /// there (a node's state is not changed twice by one attempt), then the errors port or the dead letters.
    private func retry(
        _ message: Message, failedWith error: any Error, _ transform: any TransformNode, _ node: RunningNode,
        into outputs: inout RoutedOutputs
    ) async {
        var first: (any Error)? = error
        let retried = await withRetries(node, {
            if let e = first {
                first = nil
                throw e
            }
            return try await self.withLease(message.lease) { try await transform.process(message, node.context) }
        }) { error, attempts in
            await self.fail(message, error: error, attempts: attempts, node: node)
        }
        if let retried {
            outputs.add(retried, madeFrom: message)
        } else if Task.isCancelled {
            message.delivery?.release(failure: "the flow stopped before the message was committed")
        }
    }

    /// Runs `body` under `lease` (a singleton source's), if there is one.
    func withLease<T>(_ lease: Lease?, _ body: () async throws -> T) async throws -> T {
        guard lease != nil || Lease.current != nil else { return try await body() }
        return try await Lease.$current.withValue(lease) { try await body() }
    }

    /// Sends what a node held back. Its outputs carry their own deliveries (`Message.carrying`).
    func flush(_ transform: any TransformNode, _ node: RunningNode, final: Bool) async {
        let made: [Output]
        do {
            made = try await transform.flush(node.context, final: final)
        } catch {
            let reason = environment.redactor.redact("\(error)")
            node.metrics.failed(reason, at: environment.clock.now())
            node.context.logger.error("flush failed: \(reason)")
            return
        }
        node.metrics.countOut(made.count)
        var outputs = RoutedOutputs()
        for output in made { outputs.append(output.message, port: output.port) }
        for (port, messages) in outputs.take() { try? await route(messages, from: node, port: port) }
    }

    // MARK: Sinks

    func runSink(_ sink: any SinkNode, _ node: RunningNode) async {
        guard let input = node.input else { return }
        let batching = sink.batching
        var finished = false
        while !finished {
            guard case .batch(var batch) = await input.next(upTo: batching.size) else { break }
            while batch.count < batching.size, let more = input.poll(upTo: batching.size - batch.count) { batch += more }
            if (batch.count < batching.size) && (batching.flushInterval > Duration.zero) {
                let token = batchTokens.add(1, ordering: .relaxed).newValue
                let deadline = environment.clock.now().addingTimeInterval(batching.flushInterval.seconds)
                let timer = Task { [clock = environment.clock] in
                    try? await clock.sleep(until: deadline)
                    input.interrupt(token: token)
                }
                filling: while batch.count < batching.size {
                    switch await input.next(upTo: batching.size - batch.count, token: token) {
                    case .batch(let more):
                        batch += more
                        while batch.count < batching.size, let more = input.poll(upTo: batching.size - batch.count) { batch += more }
                    case .finished:
                        finished = true
                        break filling
                    case .interrupted:
                        break filling
                    }
                }
                timer.cancel()
            }
            await write(batch, to: sink, node)
            if Task.isCancelled { break }
        }
        abandonQueued(node)
    }

    func write(_ batch: [Message], to sink: any SinkNode, _ node: RunningNode) async {
        // Messages of singleton sources are written under their lease: one write per lease.
        if batch.contains(where: { $0.lease != nil }) {
            var order: [Lease?] = []
            var groups: [Lease?: [Message]] = [:]
            for m in batch {
                if groups[m.lease] == nil { order.append(m.lease) }
                groups[m.lease, default: []].append(m)
            }
            for lease in order {
                await Lease.$current.withValue(lease) { await writeUnfenced(groups[lease]!, to: sink, node) }
            }
            return
        }
        await writeUnfenced(batch, to: sink, node)
    }

    func writeUnfenced(_ batch: [Message], to sink: any SinkNode, _ node: RunningNode) async {
        node.metrics.countIn(batch.count)
        if node.tap.isWatched {
            for m in batch { node.tap.publish(m, port: "in") }
        }
        var failure: (any Error)?
        var attempts = 0
        let written: Void? = await withRetries(node, { try await sink.write(batch, node.context) }) { error, made in
            failure = error
            attempts = made
        }
        if written != nil {
            node.metrics.countOut(batch.count)
            for m in batch { m.delivery?.release() }
            return
        }
        guard let failure else {  // cancelled
            for m in batch { m.delivery?.release(failure: "the flow stopped before the message was committed") }
            return
        }
        if batch.count == 1 {
            await fail(batch[0], error: failure, attempts: attempts, node: node)
            return
        }
        // Isolate the messages at fault: write one at a time, so the rest are not lost with them.
        for m in batch {
            let written: Void? = await withRetries(node, attempts: 1, { try await sink.write([m], node.context) }) { error, _ in
                await self.fail(m, error: error, attempts: attempts + 1, node: node)
            }
            if written != nil {
                node.metrics.countOut()
                m.delivery?.release()
            } else if Task.isCancelled {
                m.delivery?.release(failure: "the flow stopped before the message was committed")
            }
        }
    }

    /// After cancellation: whatever is still queued was not committed; its sources must know.
    func abandonQueued(_ node: RunningNode) {
        for m in node.input?.drainRemaining() ?? [] {
            m.delivery?.release(failure: "the flow stopped before the message was committed")
        }
    }
}

/// What a transform made from a batch, grouped by port in the order made, each message holding a
/// claim on its delivery.
struct RoutedOutputs {
    private(set) var byPort: [(port: String, messages: [Message])] = []
    private(set) var count = 0

    init() {}

    /// Starts with messages going out of `out` that already hold their claims.
    init(out messages: consuming [Message]) {
        count = messages.count
        if !messages.isEmpty { byPort = [(NodeDefinition.outPort, messages)] }
    }

    /// Adds what was made from `input`. An output that carries no delivery of its own (or the
    /// input's) derives from the input: the input's claim passes to the first such output and
    /// each further one takes a claim of its own; with none, the input's claim is released.
    mutating func add(_ outputs: [Output], madeFrom input: Message) {
        var claimed = false
        for output in outputs {
            var m = output.message
            if m.delivery == nil || m.delivery === input.delivery {
                m.delivery = input.delivery
                if claimed { input.delivery?.retain() } else { claimed = true }
            }
            if m.lease == nil { m.lease = input.lease }
            append(m, port: output.port)
        }
        if !claimed { input.delivery?.release() }
    }

    /// The batches per port, moved out (each the only reference to its messages), leaving this empty.
    mutating func take() -> some Sequence<(port: String, messages: [Message])> {
        var ports: [(port: String, messages: [Message])] = []
        swap(&ports, &byPort)
        count = 0
        ports.reverse()
        return sequence(state: ports) { $0.popLast() }
    }

    mutating func append(_ message: Message, port: String) {
        count += 1
        if let last = byPort.indices.last, byPort[last].port == port {
            byPort[last].messages.append(message)
        } else if let i = byPort.firstIndex(where: { $0.port == port }) {
            byPort[i].messages.append(message)
        } else {
            byPort.append((port, [message]))
        }
    }
}
