import Foundation
import Logging
import ServiceLifecycle

/// When an instance of a deployment dies for good, a live one takes over what it held outside the
/// store: the nodes of the running flows that can (`AdoptingSource`, e.g. `mqtt.in` with its broker
/// session and journal) adopt the dead instance's leftovers. Every `interval` this instance looks
/// at the instances table; for each instance whose heartbeat is older than three intervals (15 s),
/// and each adopting node, it takes the lease `adopt/INSTANCE/TENANT/FLOW/NODE` (renewed while it
/// works, so two live instances never adopt the same thing), has the node adopt, and records it
/// (`adopted:INSTANCE` in the node's checkpoints, with the dead instance's start time). Once every
/// adopting node has adopted, the dead instance's record is removed from the instances table (with
/// no adopting node, it stays there, shown as not alive).
/// An instance that comes back later starts afresh. A dead instance is taken over within about
/// 15 s + `interval` of its last heartbeat, plus the time its leftovers take to drain.
///
/// Runs only with a shared store and named instances (`--instance`): only then are broker client
/// ids and journals per instance.
public struct InstanceAdoption: Service {
    let hub: Hub
    let interval: Duration
    let leaseTTL: Duration

    public init(hub: Hub, interval: Duration = .seconds(5), leaseTTL: Duration = .seconds(30)) {
        self.hub = hub
        self.interval = interval
        self.leaseTTL = leaseTTL
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await adoptDeadInstances()
            }
        }
    }

    /// One look at the instances table, adopting what the dead ones left.
    func adoptDeadInstances() async {
        let environment = hub.environment
        let store = environment.store, me = environment.instance, logger = environment.logger
        guard let instances = try? await store.instances() else { return }
        let now = Date()
        for dead in instances where dead.id != me && !InstanceHeartbeat.isAlive(dead, now: now) {
            let stamp = ISO8601.string(dead.startedAt)
            var all = true, adopting = 0
            for runner in hub.runners {
                let flow = runner.definition
                for node in runner.adoptingNodes {
                    adopting += 1
                    let done = CheckpointKey(tenant: flow.tenant, flow: flow.id, node: node, key: "adopted:\(dead.id)")
                    if (try? await store.checkpoint(done))?.value == stamp { continue }
                    let name = "adopt/\(dead.id)/\(flow.tenant)/\(flow.id)/\(node)"
                    guard let lease = try? await store.acquireLease(name, holder: me, ttl: leaseTTL) else {
                        all = false  // another instance is at it
                        continue
                    }
                    let renewal = Task {
                        while !Task.isCancelled {
                            try await Task.sleep(for: leaseTTL / 3)
                            guard try await store.renewLease(lease, ttl: leaseTTL) else { return }
                        }
                    }
                    do {
                        logger.notice("instance \(dead.id) is gone (last heartbeat \(ISO8601.string(dead.heartbeatAt))): taking over what \(flow.id)/\(node) left")
                        if try await runner.adopt(node: node, instance: dead.id) {
                            try await store.saveCheckpoint(done, value: stamp)
                        } else {
                            all = false
                        }
                    } catch {
                        all = false
                        logger.error("taking over what instance \(dead.id) left in \(flow.id)/\(node) failed (tried again in \(DurationText.format(interval))): \(environment.redactor.redact("\(error)"))")
                    }
                    renewal.cancel()
                    try? await store.releaseLease(lease)
                }
            }
            if all && adopting > 0 {
                try? await store.removeInstance(id: dead.id)
                logger.notice("instance \(dead.id) retired: nothing of it is left to take over")
            }
        }
    }
}
