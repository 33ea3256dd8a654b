import Foundation
import Synchronization
import Testing

@testable import MQTT

#if canImport(Glibc)
import Glibc
#endif

/// A broker of one connection, speaking just enough MQTT 3.1.1 over a loopback socket to see when
/// the client's acknowledgements arrive: it accepts CONNECT, answers SUBSCRIBE, sends publishes in
/// one write, and reads PUBACKs only when asked.
final class ScriptedBroker: @unchecked Sendable {
    let listener: Int32
    let port: Int
    private(set) var connection: Int32 = -1

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw MQTTError("cannot listen on loopback: \(String(cString: strerror(errno)))")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        if connection >= 0 { close(connection) }
        close(listener)
    }

    /// Waits for the client, reads its CONNECT and accepts it.
    func accept() throws {
        connection = Glibc.accept(listener, nil, nil)
        guard connection >= 0 else { throw MQTTError("accept: \(String(cString: strerror(errno)))") }
        let (type, _) = try packet()
        guard type == 0x10 else { throw MQTTError("expected CONNECT, got \(type)") }
        try send([0x20, 0x02, 0x00, 0x00])
    }

    /// Reads a SUBSCRIBE and grants QoS 1.
    func grantSubscription() throws {
        let (type, body) = try packet()
        guard type == 0x82, body.count >= 2 else { throw MQTTError("expected SUBSCRIBE, got \(type)") }
        try send([0x90, 0x03, body[0], body[1], 0x01])
    }

    /// Sends QoS 1 publishes with packet ids 1...count in one write.
    func publish(count: Int, topic: String) throws {
        var bytes: [UInt8] = []
        for id in 1...count {
            let payload = Array("{\"n\": \(id)}".utf8)
            let body = [UInt8(topic.utf8.count >> 8), UInt8(topic.utf8.count & 0xFF)] + Array(topic.utf8) + [UInt8(id >> 8), UInt8(id & 0xFF)] + payload
            bytes += [0x32, UInt8(body.count)] + body
        }
        try send(bytes)
    }

    /// Bytes the client has sent that the broker has not read (without waiting).
    var unread: Int {
        var buffer = [UInt8](repeating: 0, count: 4096)
        return max(0, recv(connection, &buffer, buffer.count, Int32(MSG_PEEK | MSG_DONTWAIT)))
    }

    /// Reads one packet: its type byte and body.
    func packet() throws -> (UInt8, [UInt8]) {
        let type = try read(1)[0]
        var length = 0
        var shift = 0
        while true {
            let byte = try read(1)[0]
            length |= Int(byte & 0x7F) << shift
            shift += 7
            if byte & 0x80 == 0 { break }
        }
        return (type, try read(length))
    }

    private func read(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes[got...].withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw MQTTError("the client closed the connection") }
            got += n
        }
        return bytes
    }

    private func send(_ bytes: [UInt8]) throws {
        guard Glibc.send(connection, bytes, bytes.count, 0) == bytes.count else { throw MQTTError("send: \(String(cString: strerror(errno)))") }
    }
}

@Suite struct AcknowledgementOrderTests {
    /// `mqtt.in` journals a burst with one write before its acknowledgements leave: the client must
    /// not write a PUBACK before `burstEnd` has returned. The broker here reads nothing until the
    /// end, so every PUBACK written is waiting in its socket: at each `burstEnd` only the earlier
    /// bursts' may be there.
    @Test func noAcknowledgementLeavesBeforeTheEndOfItsBurst() async throws {
        let broker = try ScriptedBroker()
        let seen = Mutex<(messages: [String], atBurstEnds: [(handled: Int, unread: Int)])>(([], []))
        let subscribed = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let count = 40
        let allHandled = Mutex<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
        var handlers = MosquittoClient.Handlers()
        handlers.message = { message in seen.withLock { $0.messages.append(String(decoding: message.payload, as: UTF8.self)) } }
        handlers.burstEnd = {
            let unread = broker.unread
            let handled = seen.withLock { s -> Int in
                s.atBurstEnds.append((s.messages.count, unread))
                return s.messages.count
            }
            guard handled == count else { return }
            allHandled.withLock { a -> CheckedContinuation<Void, Never>? in
                a.done = true
                return a.waiter.take()
            }?.resume()
        }
        handlers.connection = { client, up, _ in if up { try? client.subscribe("site/#", qos: 1) } }
        handlers.subscribed = { _ in subscribed.withLock { $0.take() }?.resume() }
        var settings = MQTTSettings(host: "127.0.0.1", port: broker.port, clientID: "order")
        settings.protocolVersion = "3.1.1"
        settings.cleanSession = true
        // No keepalive pings: on a busy machine a PINGREQ could come before the PUBACKs.
        settings.keepalive = 0
        let client = try MosquittoClient(settings, handlers: handlers)
        // The client's first connect is made in `start`, before the broker accepts it (the
        // connection waits in the listener's backlog).
        try client.start()
        defer { client.stop() }
        try broker.accept()
        await withCheckedContinuation { c in
            subscribed.withLock { $0 = c }
            do { try broker.grantSubscription() } catch { subscribed.withLock { $0.take() }?.resume() }
        }

        try broker.publish(count: count, topic: "site/inv-1/power")
        // The broker reads nothing until every message has been through a burst's end.
        await withCheckedContinuation { c in
            let done = allHandled.withLock { a -> Bool in
                if !a.done { a.waiter = c }
                return a.done
            }
            if done { c.resume() }
        }
        var acknowledged: [Int] = []
        while acknowledged.count < count {
            let (type, body) = try broker.packet()
            guard type == 0x40, body.count == 2 else {
                Issue.record("expected a PUBACK, got packet type \(type) with \(body.count) bytes")
                break
            }
            acknowledged.append(Int(body[0]) << 8 | Int(body[1]))
        }
        #expect(acknowledged == Array(1...count), "every message acknowledged once, in order")
        let (messages, bursts) = seen.withLock { ($0.messages, $0.atBurstEnds) }
        #expect(messages == (1...count).map { "{\"n\": \($0)}" })
        #expect(!bursts.isEmpty)
        var handledBefore = 0
        for burst in bursts where burst.handled > handledBefore {
            // Only the PUBACKs of earlier bursts (four bytes each) were written when this one ended.
            #expect(burst.unread == 4 * handledBefore, "at the end of a burst after \(handledBefore) messages, \(burst.unread) bytes had been sent")
            handledBefore = burst.handled
        }
        #expect(handledBefore == count)
    }
}
