import Foundation
import MQTT
import Synchronization
import TestSupport
import Testing

/// Collects what a client receives, and lets a test wait for a count.
final class Inbox: Sendable {
    private let state = Mutex<(messages: [MQTTMessage], connected: Int, waiters: [(Int, CheckedContinuation<Void, Never>)])>(([], 0, []))

    var messages: [MQTTMessage] { state.withLock { $0.messages } }
    var connections: Int { state.withLock { $0.connected } }
    private let subscriptions = Mutex<(count: Int, waiters: [(Int, CheckedContinuation<Void, Never>)])>((0, []))

    func subscribed() {
        let ready = subscriptions.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.count += 1
            let n = s.count
            defer { s.waiters.removeAll { $0.0 <= n } }
            return s.waiters.filter { $0.0 <= n }.map(\.1)
        }
        for c in ready { c.resume() }
    }

    /// Returns once the broker confirmed `count` subscriptions.
    func waitFor(subscriptions count: Int) async {
        await withCheckedContinuation { c in
            let done = subscriptions.withLock { s -> Bool in
                if s.count >= count { return true }
                s.waiters.append((count, c))
                return false
            }
            if done { c.resume() }
        }
    }

    func add(_ message: MQTTMessage) {
        let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.messages.append(message)
            let n = s.messages.count
            let ready = s.waiters.filter { $0.0 <= n }.map(\.1)
            s.waiters.removeAll { $0.0 <= n }
            return ready
        }
        for c in ready { c.resume() }
    }

    func connected() {
        let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.connected += 1
            let ready = s.waiters.filter { $0.0 < 0 && -$0.0 <= s.connected }.map(\.1)
            s.waiters.removeAll { $0.0 < 0 && -$0.0 <= s.connected }
            return ready
        }
        for c in ready { c.resume() }
    }

    /// Returns once `count` messages arrived.
    func waitFor(messages count: Int) async {
        await withCheckedContinuation { c in
            let done = state.withLock { s -> Bool in
                if s.messages.count >= count { return true }
                s.waiters.append((count, c))
                return false
            }
            if done { c.resume() }
        }
    }

    /// Returns once the client connected `count` times.
    func waitFor(connections count: Int) async {
        await withCheckedContinuation { c in
            let done = state.withLock { s -> Bool in
                if s.connected >= count { return true }
                s.waiters.append((-count, c))
                return false
            }
            if done { c.resume() }
        }
    }
}

@Suite struct MosquittoClientTests {
    func client(_ broker: MosquittoServer, id: String, subscribe filters: [String] = [], qos: Int = 1, inbox: Inbox) throws -> MosquittoClient {
        var settings = MQTTSettings(port: broker.port, clientID: id)
        settings.cleanSession = true
        var handlers = MosquittoClient.Handlers()
        handlers.message = { inbox.add($0) }
        handlers.subscribed = { _ in inbox.subscribed() }
        handlers.connection = { client, connected, _ in
            guard connected else { return }
            for f in filters { try? client.subscribe(f, qos: qos) }
            inbox.connected()
        }
        let client = try MosquittoClient(settings, handlers: handlers)
        try client.start()
        return client
    }

    @Test func publishesAreConfirmedAndWildcardSubscriptionsReceiveThem() async throws {
        let broker = try await MosquittoServer.shared()
        let inbox = Inbox()
        let root = "t\(UUID().uuidString.prefix(8))"  // the broker is shared: topics of this test only
        let subscriber = try client(broker, id: "sub-\(UUID().uuidString.prefix(8))", subscribe: ["\(root)/site/+/power", "\(root)/meters/#"], inbox: inbox)
        await inbox.waitFor(subscriptions: 2)
        let publisherInbox = Inbox()
        let publisher = try client(broker, id: "pub-\(UUID().uuidString.prefix(8))", inbox: publisherInbox)
        await publisherInbox.waitFor(connections: 1)

        try await publisher.publish(topic: "\(root)/site/probe/power", payload: Array("0".utf8), qos: 1, retain: false)
        await inbox.waitFor(messages: 1)
        try await publisher.publish(topic: "\(root)/site/inv-07/power", payload: Array(#"{"w": 1250}"#.utf8), qos: 1, retain: false)
        try await publisher.publish(topic: "\(root)/site/inv-07/energy", payload: Array("x".utf8), qos: 1, retain: false)  // no match
        try await publisher.publish(topic: "\(root)/meters/a/b/c", payload: Array("42.5".utf8), qos: 0, retain: false)
        await inbox.waitFor(messages: 3)
        let received = inbox.messages
        #expect(received.map(\.topic) == ["site/probe/power", "site/inv-07/power", "meters/a/b/c"].map { "\(root)/\($0)" })
        #expect(String(decoding: received[1].payload, as: UTF8.self) == #"{"w": 1250}"#)
        #expect(received[1].qos == 1)
        #expect(received[2].qos == 0)
        subscriber.stop()
        publisher.stop()
    }
}
