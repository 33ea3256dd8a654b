import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing

@testable import MQTT

@Suite struct MessageInboxTests {
    func entry(_ seq: UInt64) -> MessageInbox.Entry {
        MessageInbox.Entry(seq: seq, message: MQTTMessage(topic: "t/\(seq)", payload: [], qos: 1))
    }

    /// Waits (yielding, bounded) until `condition` holds: the producer thread's state is observed,
    /// not guessed with a sleep.
    func eventually(_ what: String, _ condition: () -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw InboxTestError(what) }
            sched_yield()
        }
    }

    /// A value the producer thread sets and the test reads.
    final class Shared<Value: Sendable>: Sendable {
        private let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        var now: Value { value.withLock { $0 } }
        func set(_ change: (inout Value) -> Void) { value.withLock { change(&$0) } }
    }

    struct InboxTestError: Error, CustomStringConvertible {
        var description: String
        init(_ what: String) { description = "not in 30 s: \(what)" }
    }

    /// At capacity libmosquitto's thread waits, and it is woken once a quarter of the capacity has
    /// settled, not at every settled message; nothing is lost or reordered on the way.
    @Test func aFullInboxWakesItsProducerAfterAQuarterHasSettledNotAtEveryMessage() async throws {
        let inbox = MessageInbox(capacity: 8)
        #expect(inbox.resumeAt == 6)
        let put = Shared(0)
        let producer = Thread {
            for seq in 1...12 {
                guard inbox.put(entry(UInt64(seq))) else { return }
                put.set { $0 += 1 }
            }
        }
        producer.start()
        try eventually("the producer waits with 8 in flight") { inbox.waiting.now && put.now == 8 }
        #expect(inbox.waiting.times == 1)

        inbox.release()  // 7 in flight: above resumeAt, it is not woken
        #expect(inbox.waiting.wokenUp == 0)
        inbox.release()  // 6: woken, it puts two and waits again
        #expect(inbox.waiting.wokenUp == 1)
        try eventually("the producer put two more and waits again") { inbox.waiting.now && put.now == 10 }
        #expect(inbox.waiting.times == 2)

        inbox.release(2)
        try eventually("the producer put the last two") { put.now == 12 }
        var seen: [UInt64] = []
        while seen.count < 12, let burst = await inbox.take() { seen += burst.entries.map(\.seq) }
        #expect(seen == Array(1...12))
        inbox.close()
    }

    /// Closing the inbox lets a waiting producer go (its message refused) and ends `take`.
    @Test func closingReleasesAWaitingProducer() async throws {
        let inbox = MessageInbox(capacity: 1)
        #expect(inbox.put(entry(1)))
        let refused = Shared(false)
        let done = Shared(false)
        let producer = Thread {
            let accepted = inbox.put(entry(2))
            refused.set { $0 = !accepted }
            done.set { $0 = true }
        }
        producer.start()
        try eventually("the producer waits") { inbox.waiting.now }
        inbox.close()
        try eventually("the producer was let go") { done.now }
        #expect(refused.now)
        #expect(await inbox.take()?.entries.map(\.seq) == [1])
        #expect(await inbox.take() == nil)
    }
}
