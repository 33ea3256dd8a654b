import Foundation
import Synchronization

// Sources: each runs in its own task, restarted after a failure; a singleton source runs under its
// lease in the store, on one instance at a time; an adopting source can take over a dead instance's share.
extension FlowRunner {
    func runSource(_ source: any SourceNode, _ node: RunningNode) async {
        await SourceTask.$node.withValue(node.definition.id) {
            await runSourceTask(source, node)
        }
        (environment.clock as? any SourceWatchingClock)?.sourceEnded()
    }

    func runSourceTask(_ source: any SourceNode, _ node: RunningNode) async {
        let queues = node.outputs[NodeDefinition.outPort] ?? []
        let context = SourceContext(
            node: node.context,
            emitter: { [self] messages in
                node.metrics.countOut(messages.count)
                node.metrics.status.sent(messages)
                if let lease = Lease.current {
                    for i in messages.indices { messages[i].lease = lease }
                }
                try await self.route(BoundedQueue.take(&messages), from: node, port: NodeDefinition.outPort)
            },
            room: { queues.map { max(0, $0.capacity - $0.count) }.min() ?? .max },
            waitForRoom: { for queue in queues { await queue.waitForRoom() } })
        if let adopting = source as? any AdoptingSource {
            adopters.withLock { $0[node.definition.id] = (adopting, context) }
        }
        defer { _ = adopters.withLock { $0.removeValue(forKey: node.definition.id) } }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                if node.singleton && self.environment.leases {
                    await self.runHoldingLease(source, node, context)
                } else {
                    _ = await self.runWithRestarts(source, node, context)
                }
            }
            group.addTask { await self.stopSignal.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// The ids of this flow's nodes that can adopt a dead instance's leftovers.
    var adoptingNodes: [String] { adopters.withLock { $0.keys.sorted() } }

    /// Has node `id` take over what instance `instance` left; false when the node is not running.
    func adopt(node id: String, instance: String) async throws -> Bool {
        guard let (source, context) = adopters.withLock({ $0[id] }) else { return false }
        try await source.adopt(instance: instance, context)
        return true
    }

    /// Runs a source, restarting it after a failure with the node's backoff, until it ends, fails
    /// for good, is cancelled, or (under a lease) finds that its lease was lost.
    func runWithRestarts(_ source: any SourceNode, _ node: RunningNode, _ context: SourceContext) async -> SourceEnding {
        var failures = 0
        while !Task.isCancelled {
            do {
                node.metrics.status.set(.running)
                try await source.run(context)
                node.metrics.status.set(.stopped)
                return .ended
            } catch is CancellationError {
                return .ended
            } catch is LeaseLost {
                return .leaseLost
            } catch {
                let reason = environment.redactor.redact("\(error)")
                let permanent = error is PermanentError
                node.metrics.failed(reason, at: environment.clock.now(), state: permanent ? .stopped : .failing)
                if permanent {
                    node.context.logger.error("source stopped: \(reason)")
                    return .ended
                }
                failures += 1
                let wait = node.definition.retry.delay(afterAttempt: failures, retryAfter: (error as? RetryAfterError)?.retryAfter)
                node.context.logger.error("source failed, restarting in \(DurationText.format(wait)): \(reason)")
                do { try await environment.clock.sleep(for: wait) } catch { return .ended }
            }
        }
        return .ended
    }

    enum SourceEnding { case ended, leaseLost }

    /// How long a lease lasts without renewal, how often it is renewed, and how often an instance
    /// without it asks again: a dead holder's sources move within `leaseTTL + leasePoll` (20 s).
    static let leaseTTL = Duration.seconds(15)
    static let leaseRenewal = Duration.seconds(5)
    static let leasePoll = Duration.seconds(5)

    /// A singleton source: run only while this instance holds its lease in the store, its
    /// checkpoint writes fenced with it (`Lease.current`). Another instance's lease is waited for;
    /// a lease lost (this instance was paused or cut off) stops the source here at once.
    func runHoldingLease(_ source: any SourceNode, _ node: RunningNode, _ context: SourceContext) async {
        let name = "\(definition.tenant)/\(definition.id)/\(node.definition.id)"
        let store = environment.store, holder = environment.instance
        var waitingSaid = false
        while !Task.isCancelled {
            let lease: Lease?
            do {
                lease = try await store.acquireLease(name, holder: holder, ttl: Self.leaseTTL)
            } catch {
                node.context.logger.warning("the lease of this source could not be asked for: \(environment.redactor.redact("\(error)"))")
                lease = nil
            }
            guard let lease else {
                if !waitingSaid { node.context.logger.info("another instance runs this source; this one takes over if it stops") }
                waitingSaid = true
                node.metrics.status.leaseHeld(by: nil)
                do { try await Task.sleep(for: Self.leasePoll) } catch { return }
                continue
            }
            waitingSaid = false
            node.metrics.status.leaseHeld(by: lease)
            node.context.logger.info("runs this source here (lease fence \(lease.fence))")
            let lost = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await Lease.$current.withValue(lease) { await self.runWithRestarts(source, node, context) } == .leaseLost
                }
                group.addTask {
                    while true {
                        do { try await Task.sleep(for: Self.leaseRenewal) } catch { return false }
                        // A store error is not a loss: the lease may still hold, and fenced writes
                        // are refused if it does not.
                        if (try? await store.renewLease(lease, ttl: Self.leaseTTL)) == false { return true }
                    }
                }
                let lost = await group.next() ?? false
                group.cancelAll()
                return lost
            }
            if !lost {
                // Given up so another instance need not wait for it to expire (this task is being
                // cancelled by the stop: the release runs in one of its own).
                await Task { try? await store.releaseLease(lease) }.value
                return
            }
            node.context.logger.warning("lost the lease of this source (fence \(lease.fence)) to another instance: stopped here")
            node.metrics.status.leaseHeld(by: nil)
        }
    }

}
