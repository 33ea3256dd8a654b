import Foundation
import Logging
import TestSupport
import Testing

@testable import MQTT

@Suite struct MQTTSubscriptionTests {
    /// Iterates until `enough` holds for what has come, returning all of it.
    func collect(_ iterator: inout MQTTSubscription.AsyncIterator, until enough: (MessageInbox.Burst) -> Bool) async -> MessageInbox.Burst {
        var all = MessageInbox.Burst()
        while !enough(all), let burst = await iterator.next() {
            all.events += burst.events
            all.entries += burst.entries
        }
        return all
    }

    @Test func eventsAndJournaledMessagesComeAsOneSequenceAndWhatIsNotSettledComesBackFromTheJournal() async throws {
        let broker = try await MosquittoServer.shared()
        let root = "s\(UUID().uuidString.prefix(8))"
        let journal = try Commands.makeTemporaryDirectory(prefix: "subscription-journal")
        var settings = MQTTSettings(port: broker.port, clientID: "sub-\(UUID().uuidString.prefix(8))")
        settings.cleanSession = true
        let logger = Logger(label: "test")
        func subscription() throws -> MQTTSubscription {
            try MQTTSubscription(
                settings, journalDirectory: journal, sync: .never, capacity: 8,
                onConnect: .subscribe(["\(root)/#"], qos: 1), logger: logger)
        }

        let first = try subscription()
        #expect(try first.recovered(logger: logger).isEmpty)
        try first.start()
        var events = first.makeAsyncIterator()
        let ready = await collect(&events) { $0.events.contains { if case .subscribed = $0 { true } else { false } } }
        #expect(ready.events == [.connected, .subscribed(granted: [1])], "it subscribed on connecting, and says so")

        var publisherSettings = MQTTSettings(port: broker.port, clientID: "pub-\(UUID().uuidString.prefix(8))")
        publisherSettings.cleanSession = true
        let publisher = try MosquittoClient(publisherSettings)
        try publisher.start()
        defer { publisher.stop() }
        try await publisher.publish(topic: "\(root)/a", payload: Array("1".utf8), qos: 1, retain: false)
        try await publisher.publish(topic: "\(root)/b", payload: Array("2".utf8), qos: 0, retain: false)
        try await publisher.publish(topic: "\(root)/c", payload: Array("3".utf8), qos: 1, retain: false)
        let got = await collect(&events) { $0.entries.count >= 3 }.entries
        #expect(got.map(\.message.topic) == ["a", "b", "c"].map { "\(root)/\($0)" })
        #expect(got[0].seq > 0 && got[2].seq > 0, "QoS 1 messages are journaled")
        #expect(got[1].seq == 0, "QoS 0 messages are not")

        first.settle(got[0].seq, committed: true)
        first.settle(got[1].seq, committed: true)
        first.settle(got[2].seq, committed: false)  // dropped by the flow: its record stays
        first.stop()
        #expect(await events.next() == nil, "a stopped subscription's sequence ends")

        let second = try subscription()
        defer { second.stop() }
        let replayed = try second.recovered(logger: logger)
        #expect(replayed.map(\.message) == [got[2].message], "only what was not committed comes back")
    }
}
