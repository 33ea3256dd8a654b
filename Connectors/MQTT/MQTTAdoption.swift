import EnchufeCore
import Foundation
import Synchronization

/// Taking over what a dead instance's `mqtt.in` left. With a shared subscription the broker keeps
/// giving an offline persistent session its share of the group's messages and queues them for it:
/// an instance gone for good would strand them until it came back. A live instance (chosen under a
/// lease by `InstanceAdoption`) does what the dead one would have done at its next start:
///
/// 1. it opens the dead instance's journal folder, if it can reach it (same machine, or a shared
///    disk; the folder's lock tells a dead process from a live one), and sends what is there;
/// 2. it connects with the dead instance's client id, resuming its session (the broker sends what
///    it queued), unsubscribes its filters (so the group stops counting it), journals each message
///    in that same folder before acknowledging it, as `run` does, and sends it into the flow;
/// 3. when nothing more has come for `quiet` and everything sent is committed, it disconnects, which
///    ends the session (MQTT 5: session expiry 0; MQTT 3.1.1: one more, clean, connection).
///
/// What cannot be recovered: a journal on a disk no survivor can reach holds messages acknowledged
/// to the broker but not yet committed (at most `max_pending`, and with the default `journal_sync`
/// whatever arrived in the last 100 ms before a power loss); they come back only if that instance
/// returns with its disk.
extension MQTTInNode: AdoptingSource {
    /// How long the broker stays silent before the dead session counts as drained.
    static let quiet = Duration.seconds(2)
    /// How long adopting waits for the broker before it gives up (and is tried again later).
    static let connectTimeout = Duration.seconds(30)
    static let brokerSilent = MQTTError("the broker did not answer within \(DurationText.format(connectTimeout))")

    func adopt(instance dead: String, _ context: SourceContext) async throws {
        guard let instance, settings.clientID.hasSuffix("-" + instance) else { return }
        let logger = context.logger
        var settings = self.settings
        settings.clientID = String(settings.clientID.dropLast(instance.count)) + dead
        settings.sessionExpiry = 0  // MQTT 5: the resumed session ends with this connection
        let subscription = try MQTTSubscription(
            settings, journalDirectory: journalBase.appendingPathComponent(dead), sync: sync, capacity: maxPending,
            onConnect: .unsubscribe(filters), logger: logger)
        defer { subscription.stop() }
        let progress = AdoptionProgress()
        let left = try subscription.recovered(logger: logger)
        if !left.isEmpty { logger.notice("instance \(dead) left \(left.count) journaled message(s): sending them") }
        progress.sent(left.count)
        await handle(left, from: subscription, context, settled: progress.settled)

        try subscription.start()
        let consumer = Task {
            for await burst in subscription {
                if burst.events.contains(.connected) { progress.connected.fire() }
                progress.sent(burst.entries.count)
                await handle(burst.entries, from: subscription, context, settled: progress.settled)
            }
        }
        do {
            guard await progress.connected.wait(timeout: Self.connectTimeout) else { throw Self.brokerSilent }
            // Drained: a whole `quiet` passed without a message.
            var seen = -1
            while progress.taken != seen {
                seen = progress.taken
                try await context.clock.sleep(for: Self.quiet)
            }
        } catch {
            subscription.disconnect()
            consumer.cancel()
            throw error
        }
        subscription.disconnect()
        await consumer.value
        await progress.allSettled()
        if settings.protocolVersion == "3.1.1" {
            settings.cleanSession = true
            var wipeHandlers = MosquittoClient.Handlers()
            let up = OneShot()
            wipeHandlers.connection = { _, connected, _ in if connected { up.fire() } }
            let wipe = try MosquittoClient(settings, handlers: wipeHandlers)
            try wipe.start()
            defer { wipe.stop() }
            guard await up.wait(timeout: Self.connectTimeout) else { throw Self.brokerSilent }
        }
        subscription.stop()  // closes the journal before saying so: whoever reads the log may open the folder next
        logger.notice("took over instance \(dead)'s MQTT session \(settings.clientID): \(progress.taken) message(s) sent on")
    }
}

/// What a take-over has sent, and what of it is settled.
final class AdoptionProgress: Sendable {
    private let state = Mutex<(sent: Int, settled: Int, waiters: [CheckedContinuation<Void, Never>])>((0, 0, []))
    let connected = OneShot()

    var taken: Int { state.withLock { $0.sent } }

    func sent(_ count: Int) { state.withLock { $0.sent += count } }

    @Sendable func settled() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.settled += 1
            guard s.settled >= s.sent else { return [] }
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    /// Returns once every message sent is settled (committed or dead-lettered).
    func allSettled() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { s -> Bool in
                if s.settled >= s.sent { return true }
                s.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
