import Foundation
import Logging

/// libmosquitto wrapped once for receiving: a client whose QoS 1/2 messages are written to a
/// journal on the client's thread before it acknowledges them (a burst with one `write(2)`), handed
/// to one task as an async sequence of bursts (connection events and journaled messages) through a
/// bounded inbox.
///
/// At most `capacity` messages are in flight, from arrival until `settle` (plus at most a burst);
/// at that bound the client's thread waits on the inbox's condition variable (no polling), stops
/// reading, and the broker holds the rest. What the journal kept from before the last stop comes first, from
/// `recovered()`, counted in flight like the rest. On connecting the subscription subscribes its
/// filters (again after every reconnect) or, taking over a dead instance's session, unsubscribes
/// them. Whoever iterates only converts what it gets, sends it on, and settles each entry.
final class MQTTSubscription: AsyncSequence, Sendable {
    typealias Element = MessageInbox.Burst

    /// What to do with the filters each time the connection comes up.
    enum OnConnect: Sendable {
        case subscribe([String], qos: Int)
        /// Taking over a session: stop new messages for it, keep what the broker queued.
        case unsubscribe([String])
    }

    let journal: MessageJournal
    private let inbox: MessageInbox
    private let client: MosquittoClient

    /// Opens the journal in `journalDirectory` and makes (without starting) the client.
    init(_ settings: MQTTSettings, journalDirectory: URL, sync: MessageJournal.Sync, capacity: Int, onConnect: OnConnect, logger: Logger) throws {
        let journal = try MessageJournal(directory: journalDirectory, sync: sync)
        let inbox = MessageInbox(capacity: capacity)
        let burst = BurstInProgress()
        var handlers = MosquittoClient.Handlers()
        handlers.message = { message in
            var seq: UInt64 = 0
            if message.qos > 0 {
                do {
                    seq = try journal.stage { JournaledMessage.encode(message, into: &$0) }
                } catch {
                    // Not durable: the client will still acknowledge it. Say so loudly.
                    logger.critical("message on \(message.topic) could not be journaled before its acknowledgement: \(error)")
                }
            }
            burst.entries.append(MessageInbox.Entry(seq: seq, message: message))
        }
        // The burst's records written with one write(2), then its acknowledgements may leave.
        handlers.burstEnd = {
            guard !burst.entries.isEmpty else { return }
            do {
                try journal.flush()
            } catch {
                logger.critical("\(burst.entries.count) message(s) could not be journaled before their acknowledgement: \(error)")
            }
            inbox.put(contentsOf: burst.entries)
            burst.entries.removeAll(keepingCapacity: true)
        }
        handlers.connection = { client, up, reason in
            if up {
                switch onConnect {
                case .subscribe(let filters, let qos):
                    for filter in filters {
                        do { try client.subscribe(filter, qos: qos) } catch { logger.error("\(error)") }
                    }
                case .unsubscribe(let filters):
                    for filter in filters { try? client.unsubscribe(filter) }
                }
            }
            inbox.post(up ? .connected : .disconnected(reason: reason))
        }
        handlers.subscribed = { granted in inbox.post(.subscribed(granted: granted)) }
        do {
            client = try MosquittoClient(settings, handlers: handlers)
        } catch {
            journal.close()
            throw error
        }
        self.journal = journal
        self.inbox = inbox
    }

    /// The journal's records not committed before the last stop, counted in flight (a record that
    /// cannot be read is logged and committed). Call it once, before `start`.
    func recovered(logger: Logger) throws -> [MessageInbox.Entry] {
        let entries = try journal.recover().compactMap { record -> MessageInbox.Entry? in
            guard let message = JournaledMessage.decode(record.data) else {
                logger.error("journal record \(record.seq) cannot be read; skipped")
                journal.commit(record.seq)
                return nil
            }
            return MessageInbox.Entry(seq: record.seq, message: message)
        }
        inbox.admit(entries.count)
        return entries
    }

    /// Connects in the background; the client's thread reconnects by itself.
    func start() throws { try client.start() }

    /// Disconnects and ends the sequence (once what has arrived is taken); entries still in the
    /// flow can settle.
    func disconnect() {
        inbox.close()
        client.stop()
    }

    /// Disconnects and closes the journal. What was not settled stays in it for the next start.
    func stop() {
        disconnect()
        journal.close()
    }

    /// Ends the sequence without disconnecting (the iterating task is being cancelled).
    func finish() { inbox.close() }

    /// An entry is done with: its record leaves the journal if it was `committed` (stored, or
    /// dead-lettered), and it no longer counts in flight either way.
    func settle(_ seq: UInt64, committed: Bool) {
        if committed, seq > 0 { journal.commit(seq) }
        inbox.release()
    }

    /// `count` entries given up without committing (the flow is stopping): they stay in the journal.
    func abandon(_ count: Int) { inbox.release(count) }

    struct AsyncIterator: AsyncIteratorProtocol {
        let inbox: MessageInbox

        mutating func next() async -> MessageInbox.Burst? { await inbox.take() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inbox: inbox) }
}

/// The messages of the burst the client's thread is reading (only that thread touches them).
private final class BurstInProgress: @unchecked Sendable {
    var entries: [MessageInbox.Entry] = []
}
