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

/// One libmosquitto client. libmosquitto's network thread (started by `start`) reads, writes,
/// keeps the connection alive and reconnects with backoff; this class turns its callbacks into calls
/// of its `handlers`, given once when it is made, and its publish confirmations into `async`
/// results. The thread stays inside this class: `handlers.message` runs on it and must return
/// quickly (it is where a message is made durable before libmosquitto acknowledges it to the
/// broker, which it does once the callback returns).
///
/// `@unchecked Sendable`: its only state besides immutable values is libmosquitto's handle (whose
/// calls libmosquitto makes thread-safe) and what a `Mutex` or an atomic guards.
public final class MosquittoClient: @unchecked Sendable {
    /// What a client calls, all on libmosquitto's thread.
    public struct Handlers: Sendable {
        /// Every message, in order. The broker gets the QoS 1 PUBACK (QoS 2 PUBREC/PUBCOMP) after it
        /// returns.
        public var message: (@Sendable (MQTTMessage) -> Void)?
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
        box.client = self
        try configure()
    }

    deinit {
        mosquitto_loop_stop(handle, true)
        mosquitto_destroy(handle)
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
        try check(mosquitto_reconnect_delay_set(handle, 1, 30, true), "reconnect delay")

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
            let m = message.pointee
            let payload = m.payloadlen > 0 && m.payload != nil
                ? Array(UnsafeRawBufferPointer(start: m.payload, count: Int(m.payloadlen))) : []
            client.handlers.message?(MQTTMessage(topic: String(cString: m.topic), payload: payload, qos: Int(m.qos), retain: m.retain))
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, object, _, count, granted, _ in
            guard let client = CallbackBox.client(object) else { return }
            client.handlers.subscribed?((0..<Int(count)).map { Int(granted?[$0] ?? 128) })
        }
        mosquitto_publish_v5_callback_set(handle) { _, object, mid, rc, _ in
            guard let client = CallbackBox.client(object) else { return }
            client.confirmed(mid: mid, reasonCode: rc)
        }
    }

    /// Connects in the background and starts libmosquitto's thread, which reconnects by itself.
    ///
    /// A persistent MQTT 5 session needs a session expiry interval in CONNECT, which libmosquitto only
    /// sends from its blocking connect: that call is made here, and if the broker is not there yet the
    /// network thread keeps trying (the properties stay with the client for every reconnect).
    public func start() throws {
        if settings.protocolVersion != "3.1.1" && !settings.cleanSession {
            var properties: OpaquePointer? = nil
            try check(mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), UInt32(settings.sessionExpiry)), "session expiry")
            defer { mosquitto_property_free_all(&properties) }
            let rc = mosquitto_connect_bind_v5(handle, settings.host, Int32(settings.port), Int32(settings.keepalive), nil, properties)
            if rc == MOSQ_ERR_INVAL.rawValue { throw MQTTError("connect to \(settings.host):\(settings.port)", code: rc) }
            if rc != MOSQ_ERR_SUCCESS.rawValue { connectionChanged(false, String(cString: mosquitto_strerror(rc))) }
        } else {
            try check(mosquitto_connect_async(handle, settings.host, Int32(settings.port), Int32(settings.keepalive)), "connect to \(settings.host):\(settings.port)")
        }
        try check(mosquitto_loop_start(handle), "start the network thread")
    }

    /// Disconnects and stops the thread.
    public func stop() {
        mosquitto_disconnect(handle)
        mosquitto_loop_stop(handle, false)
        let waiting = confirmations.withLock { c -> [CheckedContinuation<Void, any Error>] in
            defer { c.waiting = [:] }
            return Array(c.waiting.values)
        }
        for w in waiting { w.resume(throwing: MQTTError("the connection was closed before the broker confirmed")) }
    }

    private func connectionChanged(_ connected: Bool, _ reason: String) {
        handlers.connection?(self, connected, reason)
    }

    /// Subscribes (again after every reconnect: call it from `handlers.connection`).
    public func subscribe(_ filter: String, qos: Int) throws {
        try check(mosquitto_subscribe_v5(handle, nil, filter, Int32(qos), 0, nil), "subscribe to '\(filter)'")
    }

    /// Unsubscribes a filter (taking over a dead instance's session: no new messages for it).
    public func unsubscribe(_ filter: String) throws {
        try check(mosquitto_unsubscribe_v5(handle, nil, filter, nil), "unsubscribe from '\(filter)'")
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
