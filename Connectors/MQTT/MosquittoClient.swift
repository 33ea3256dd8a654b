import CMosquitto
import Foundation
import Synchronization

/// A message as it came from the broker.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: Int
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: Int, retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}

/// How to reach and log in to a broker (the `mqtt.broker` connection's options).
public struct MQTTSettings: Sendable, Equatable {
    // The defaults are the `mqtt.broker` spec's.
    public var host = MQTTBroker.host.fallback
    public var port = MQTTBroker.port.fallback
    public var clientID: String
    public var username: String?
    public var password: String?
    public var keepalive = MQTTBroker.keepalive.fallback
    /// `3.1.1` or `5`.
    public var protocolVersion = MQTTBroker.protocol.fallback
    public var cleanSession = MQTTBroker.cleanSession.fallback
    /// MQTT 5: how long the broker keeps a session (not clean) after the connection closes, seconds.
    public var sessionExpiry = 7 * 86_400
    public var tls: TLS?
    /// Most QoS 1/2 messages in flight each way (MQTT 5 receive maximum; libmosquitto's own limit
    /// for publishes).
    public var inflight = MQTTBroker.inflight.fallback

    public struct TLS: Sendable, Equatable {
        public var ca: String?
        public var cert: String?
        public var key: String?
        /// Off only when explicitly disabled: the broker's name must match its certificate.
        public var verifyHostname = MQTTBroker.verifyHostname.fallback

        public init(ca: String? = nil, cert: String? = nil, key: String? = nil, verifyHostname: Bool = true) {
            self.ca = ca
            self.cert = cert
            self.key = key
            self.verifyHostname = verifyHostname
        }
    }

    /// Settings for the broker at `host` (by default the spec's) and `port`.
    public init(host: String? = nil, port: Int, clientID: String) {
        if let host { self.host = host }
        self.port = port
        self.clientID = clientID
    }
}

public struct MQTTError: Error, CustomStringConvertible {
    public var description: String

    init(_ what: String, code: Int32) {
        description = "\(what): \(String(cString: mosquitto_strerror(code)))"
    }

    init(_ description: String) { self.description = description }
}

/// One libmosquitto client, driven by a network thread of its own (started by `start`): it waits
/// for the socket with `poll(2)`, reads every packet that has arrived (a burst), calls
/// `handlers.burstEnd`, and only then lets libmosquitto write what it queued meanwhile — the
/// PUBACKs of the burst's QoS 1 messages among it. It keeps the connection alive and reconnects with
/// backoff (1 s, doubling to 30 s). This class turns libmosquitto's callbacks into calls of its
/// `handlers`, given once when it is made, and its publish confirmations into `async` results.
///
/// libmosquitto's own thread (`mosquitto_loop_start`) would wait in `pselect` for every packet, be
/// woken through a socket pair for every PUBACK it queues, and write each PUBACK before the
/// application could write a burst's records at once; libmosquitto queues instead of writing when
/// told the application runs the loop (`mosquitto_threaded_set`), which is what lets a burst be
/// journaled with one `write(2)` before any of its acknowledgements leaves.
///
/// `@unchecked Sendable`: its only state besides immutable values is libmosquitto's handle (whose
/// calls libmosquitto makes thread-safe) and what a `Mutex` or an atomic guards.
public final class MosquittoClient: @unchecked Sendable {
    /// What a client calls, all on its network thread.
    public struct Handlers: Sendable {
        /// Every message, in order. Its QoS 1 PUBACK (QoS 2 PUBREC/PUBCOMP) is written after
        /// `burstEnd` returns.
        public var message: (@Sendable (MQTTMessage) -> Void)?
        /// Every packet that had arrived has been read (and `message` called for each message among
        /// them); their acknowledgements are written once this returns.
        public var burstEnd: (@Sendable () -> Void)?
        /// A connection is up (`true`) or lost (`false`, with why); given the client, to subscribe
        /// again after a reconnect.
        public var connection: (@Sendable (_ client: MosquittoClient, _ connected: Bool, _ reason: String) -> Void)?
        /// The broker answered a subscription, with the QoS it granted to each filter (128 or more:
        /// refused).
        public var subscribed: (@Sendable (_ granted: [Int]) -> Void)?

        public init() {}
    }

    let handlers: Handlers
    let settings: MQTTSettings
    private let handle: OpaquePointer
    private let box: CallbackBox
    private let confirmations = Mutex(Confirmations())
    private let isConnected = Atomic<Bool>(false)
    /// Set by `stop`: the network thread disconnects and ends.
    private let stopping = Atomic<Bool>(false)
    /// A pipe that wakes the network thread from `poll` (a publish queued from another thread, stop).
    private let wake: (read: Int32, write: Int32)
    /// Signalled when the network thread has ended (nil: it was never started).
    private let ended = Mutex<DispatchSemaphore?>(nil)
    /// Counts the callbacks of received packets, so the thread can tell a read that took a packet
    /// from one that found nothing (libmosquitto answers success to both).
    private let packetsRead = Atomic<Int>(0)
    /// The most packets read before their acknowledgements are written.
    static let burstLimit = 1024

    private struct Confirmations {
        var waiting: [Int32: CheckedContinuation<Void, any Error>] = [:]
        var early: Set<Int32> = []
    }

    private static let library: Void = { mosquitto_lib_init() }()

    /// While not connected: a connection attempt that fails on libmosquitto's thread (a TLS
    /// handshake refused) calls no callback but logs an error, and that error is the failure's reason.
    private static let connectionErrors: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void = {
        _, object, level, text in
        guard level & Int32(MOSQ_LOG_ERR) != 0, let client = CallbackBox.client(object), let text,
            !client.isConnected.load(ordering: .relaxed)
        else { return }
        client.connectionChanged(false, String(cString: text))
    }

    public init(_ settings: MQTTSettings, handlers: Handlers = Handlers()) throws {
        _ = Self.library
        self.settings = settings
        self.handlers = handlers
        box = CallbackBox()
        guard let handle = mosquitto_new(settings.clientID, settings.cleanSession, Unmanaged.passUnretained(box).toOpaque()) else {
            throw MQTTError("cannot create an MQTT client (client id '\(settings.clientID)')")
        }
        self.handle = handle
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            mosquitto_destroy(handle)
            throw MQTTError("cannot make the MQTT client's wake-up pipe: \(String(cString: strerror(errno)))")
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wake = (fds[0], fds[1])
        box.client = self
        try configure()
    }

    deinit {
        stop()
        mosquitto_destroy(handle)
        close(wake.read)
        close(wake.write)
    }

    private func check(_ rc: Int32, _ what: String) throws {
        if rc != MOSQ_ERR_SUCCESS.rawValue { throw MQTTError(what, code: rc) }
    }

    private func configure() throws {
        let version = settings.protocolVersion == "3.1.1" ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5
        try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, version), "protocol version")
        if version == MQTT_PROTOCOL_V5 {
            try check(mosquitto_int_option(handle, MOSQ_OPT_RECEIVE_MAXIMUM, Int32(settings.inflight)), "receive maximum")
        }
        try check(mosquitto_max_inflight_messages_set(handle, UInt32(settings.inflight)), "inflight messages")
        if let username = settings.username {
            try check(mosquitto_username_pw_set(handle, username, settings.password), "username and password")
        }
        if let tls = settings.tls {
            try check(mosquitto_tls_set(handle, tls.ca, nil, tls.cert, tls.key, nil), "TLS settings")
            try check(mosquitto_tls_insecure_set(handle, !tls.verifyHostname), "TLS hostname verification")
        }
        // The network thread is ours: libmosquitto queues what it sends for `mosquitto_loop_write`.
        try check(mosquitto_threaded_set(handle, true), "threaded mode")

        mosquitto_connect_v5_callback_set(handle) { mosq, object, rc, _, _ in
            guard let client = CallbackBox.client(object) else { return }
            client.isConnected.store(rc == 0, ordering: .relaxed)
            // Connected: no log line is needed, and with a callback set libmosquitto formats one
            // for every packet.
            if rc == 0 { mosquitto_log_callback_set(mosq, nil) }
            client.connectionChanged(rc == 0, rc == 0 ? "connected" : String(cString: mosquitto_reason_string(rc)))
        }
        mosquitto_disconnect_v5_callback_set(handle) { mosq, object, rc, _ in
            guard let client = CallbackBox.client(object) else { return }
            client.isConnected.store(false, ordering: .relaxed)
            mosquitto_log_callback_set(mosq, MosquittoClient.connectionErrors)
            client.connectionChanged(false, rc == 0 ? "disconnected" : String(cString: mosquitto_strerror(rc)))
        }
        mosquitto_log_callback_set(handle, Self.connectionErrors)
        mosquitto_message_v5_callback_set(handle) { _, object, message, _ in
            guard let client = CallbackBox.client(object), let message else { return }
            client.packetsRead.add(1, ordering: .relaxed)
            let m = message.pointee
            let payload = m.payloadlen > 0 && m.payload != nil
                ? Array(UnsafeRawBufferPointer(start: m.payload, count: Int(m.payloadlen))) : []
            client.handlers.message?(MQTTMessage(topic: String(cString: m.topic), payload: payload, qos: Int(m.qos), retain: m.retain))
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, object, _, count, granted, _ in
            guard let client = CallbackBox.client(object) else { return }
            client.packetsRead.add(1, ordering: .relaxed)
            client.handlers.subscribed?((0..<Int(count)).map { Int(granted?[$0] ?? 128) })
        }
        mosquitto_publish_v5_callback_set(handle) { _, object, mid, rc, _ in
            guard let client = CallbackBox.client(object) else { return }
            client.packetsRead.add(1, ordering: .relaxed)
            client.confirmed(mid: mid, reasonCode: rc)
        }
    }

    /// Starts the network thread, which connects in the background and reconnects by itself.
    ///
    /// A persistent MQTT 5 session needs a session expiry interval in CONNECT: the properties are
    /// given to the first connect and stay with the client for every reconnect.
    public func start() throws {
        guard !settings.host.isEmpty, (1...65_535).contains(settings.port),
            settings.keepalive == 0 || (5...65_535).contains(settings.keepalive)
        else { throw MQTTError("connect to \(settings.host):\(settings.port)", code: Int32(MOSQ_ERR_INVAL.rawValue)) }
        let done = DispatchSemaphore(value: 0)
        let started = ended.withLock { ended -> Bool in
            guard ended == nil else { return false }
            ended = done
            return true
        }
        guard started else { throw MQTTError("the MQTT client was started twice") }
        // The first attempt here, so that a client is connecting (or has said why not) once this
        // returns; the thread tries again from then on.
        let rc = connect()
        if rc != MOSQ_ERR_SUCCESS.rawValue { connectionChanged(false, reason(rc)) }
        let thread = Thread { [self] in
            networkLoop()
            done.signal()
        }
        thread.name = "mqtt \(settings.clientID)"
        thread.start()
    }

    /// Disconnects and stops the thread (which holds the client until then: every started client is
    /// stopped by its owner).
    public func stop() {
        if let done = ended.withLock({ $0 }), !stopping.exchange(true, ordering: .acquiringAndReleasing) {
            wakeUp()
            done.wait()
        }
        let waiting = confirmations.withLock { c -> [CheckedContinuation<Void, any Error>] in
            defer { c.waiting = [:] }
            return Array(c.waiting.values)
        }
        for w in waiting { w.resume(throwing: MQTTError("the connection was closed before the broker confirmed")) }
    }

    /// Wakes the network thread from `poll`.
    private func wakeUp() {
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    /// The network thread: connect, then wait for the socket; read every packet that has arrived,
    /// end the burst, write what was queued, keep the connection alive; after a failure wait and
    /// connect again. On `stop`, sends DISCONNECT and ends.
    private func networkLoop() {
        var delay = 1
        func retryLater() {
            pause(seconds: delay)
            delay = min(delay * 2, 30)
        }
        // `start` made the first attempt.
        if mosquitto_socket(handle) < 0 { retryLater() }
        while !stopping.load(ordering: .acquiring) {
            if mosquitto_socket(handle) < 0 {
                let rc = mosquitto_reconnect(handle)
                if rc != MOSQ_ERR_SUCCESS.rawValue {
                    connectionChanged(false, reason(rc))
                    retryLater()
                    continue
                }
            }
            let socket = mosquitto_socket(handle)
            var fds = [
                pollfd(fd: socket, events: Int16(POLLIN) | (mosquitto_want_write(handle) ? Int16(POLLOUT) : 0), revents: 0),
                pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, 1000)
            if ready < 0 && errno != EINTR { break }
            if fds[1].revents != 0 { drainWakeUps() }
            if stopping.load(ordering: .acquiring) { break }
            var rc = MOSQ_ERR_SUCCESS.rawValue
            if fds[0].revents != 0 {
                rc = readBurst()
                handlers.burstEnd?()
            }
            if rc == MOSQ_ERR_SUCCESS.rawValue, mosquitto_socket(handle) >= 0 { rc = mosquitto_loop_write(handle, 1) }
            if rc == MOSQ_ERR_SUCCESS.rawValue { rc = mosquitto_loop_misc(handle) }
            if isConnected.load(ordering: .relaxed) { delay = 1 }
            if rc != MOSQ_ERR_SUCCESS.rawValue || mosquitto_socket(handle) < 0 {
                // libmosquitto closed the socket and called the disconnect callback (which says so).
                if isConnected.exchange(false, ordering: .relaxed) {
                    connectionChanged(false, reason(rc == MOSQ_ERR_SUCCESS.rawValue ? Int32(MOSQ_ERR_CONN_LOST.rawValue) : rc))
                }
                retryLater()
            }
        }
        if mosquitto_socket(handle) >= 0 {
            mosquitto_disconnect(handle)
            _ = mosquitto_loop_write(handle, 1)
        }
    }

    /// Why libmosquitto failed, in words.
    private func reason(_ rc: Int32) -> String {
        rc == MOSQ_ERR_ERRNO.rawValue ? String(cString: strerror(errno)) : String(cString: mosquitto_strerror(rc))
    }

    /// The first connect, with the session expiry of a persistent MQTT 5 session.
    private func connect() -> Int32 {
        var properties: OpaquePointer? = nil
        defer { mosquitto_property_free_all(&properties) }
        if settings.protocolVersion != "3.1.1" && !settings.cleanSession {
            let rc = mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), UInt32(settings.sessionExpiry))
            if rc != MOSQ_ERR_SUCCESS.rawValue { return rc }
        }
        return mosquitto_connect_bind_v5(handle, settings.host, Int32(settings.port), Int32(settings.keepalive), nil, properties)
    }

    /// Reads packets while they come (up to `burstLimit`); libmosquitto's result (success, or why
    /// the connection is lost).
    private func readBurst() -> Int32 {
        var rc = MOSQ_ERR_SUCCESS.rawValue
        for _ in 0..<Self.burstLimit {
            let before = packetsRead.load(ordering: .relaxed)
            rc = mosquitto_loop_read(handle, 1)
            // Nothing more has arrived (or only part of a packet, or a packet without a callback:
            // the next poll goes on).
            guard rc == MOSQ_ERR_SUCCESS.rawValue, packetsRead.load(ordering: .relaxed) != before, mosquitto_socket(handle) >= 0 else { break }
        }
        return rc
    }

    /// Waits `seconds` before connecting again, or until `stop`.
    private func pause(seconds: Int) {
        var fd = pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !stopping.load(ordering: .acquiring), ContinuousClock.now < deadline {
            let milliseconds = ((deadline - ContinuousClock.now) / .milliseconds(1)).rounded(.up)
            if poll(&fd, 1, Int32(max(1, milliseconds))) > 0 { drainWakeUps() }
        }
    }

    private func drainWakeUps() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(wake.read, &bytes, bytes.count) > 0 {}
    }

    private func connectionChanged(_ connected: Bool, _ reason: String) {
        handlers.connection?(self, connected, reason)
    }

    /// Subscribes (again after every reconnect: call it from `handlers.connection`).
    public func subscribe(_ filter: String, qos: Int) throws {
        try check(mosquitto_subscribe_v5(handle, nil, filter, Int32(qos), 0, nil), "subscribe to '\(filter)'")
        wakeUp()
    }

    /// Unsubscribes a filter (taking over a dead instance's session: no new messages for it).
    public func unsubscribe(_ filter: String) throws {
        try check(mosquitto_unsubscribe_v5(handle, nil, filter, nil), "unsubscribe from '\(filter)'")
        wakeUp()
    }

    /// Publishes and returns once the broker confirmed it (QoS 1: PUBACK; QoS 2: PUBCOMP; QoS 0: sent).
    public func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool) async throws {
        var mid: Int32 = 0
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let rc = payload.withUnsafeBytes { bytes in
                mosquitto_publish_v5(handle, &mid, topic, Int32(bytes.count), bytes.baseAddress, Int32(qos), retain, nil)
            }
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                continuation.resume(throwing: MQTTError("publish to '\(topic)'", code: rc))
                return
            }
            wakeUp()
            let early = confirmations.withLock { c -> Bool in
                if c.early.remove(mid) != nil { return true }
                c.waiting[mid] = continuation
                return false
            }
            if early { continuation.resume() }
        }
    }

    private func confirmed(mid: Int32, reasonCode: Int32) {
        let waiter = confirmations.withLock { c -> CheckedContinuation<Void, any Error>? in
            if let w = c.waiting.removeValue(forKey: mid) { return w }
            c.early.insert(mid)
            return nil
        }
        guard let waiter else { return }
        if reasonCode >= 0x80 {
            waiter.resume(throwing: MQTTError("the broker refused the message: \(String(cString: mosquitto_reason_string(reasonCode)))"))
        } else {
            waiter.resume()
        }
    }
}

/// What libmosquitto's callbacks get as their user data: a weak way back to the client.
private final class CallbackBox: @unchecked Sendable {
    weak var client: MosquittoClient?

    static func client(_ object: UnsafeMutableRawPointer?) -> MosquittoClient? {
        guard let object else { return nil }
        return Unmanaged<CallbackBox>.fromOpaque(object).takeUnretainedValue().client
    }
}
