import EnchufeCore
import Foundation

/// `mqtt.broker`: how the flow's MQTT nodes reach a broker. Each node connects with its own client
/// id, `CLIENT_ID-NODE`, so a persistent session belongs to one node and nodes never take each
/// other's connection.
enum MQTTBroker {
    static let host = OptionKey<String>("host", default: "127.0.0.1", doc: "Broker host name or address.")
    static let port = OptionKey<Int>("port", default: 1883, doc: "Broker port (8883 is usual with TLS).")
    static let clientID = OptionKey<String?>("client_id", doc: "Client id prefix; each node adds `-NODE`, and `-ID` with a shared (PostgreSQL) store and `--instance ID` (default `enchufe-FLOW`).")
    static let username = OptionKey<String?>("username", doc: "User name, if the broker wants one.")
    static let password = OptionKey<String?>("password", secret: true, doc: "Password (use `${ENV}`).", example: "${MQTT_PASSWORD}")
    static let keepalive = OptionKey<Int>("keepalive", default: 30, doc: "Seconds between keepalive pings.")
    static let `protocol` = OptionKey<String>("protocol", .enumeration(["3.1.1", "5"]), default: "5", doc: "MQTT version; shared subscriptions need 5.")
    static let cleanSession = OptionKey<Bool>("clean_session", default: false, doc: "Start each connection with a new session (messages sent while away are lost).")
    static let inflight = OptionKey<Int>("inflight", default: 100, doc: "Most QoS 1/2 messages in flight each way.")
    static let ca = OptionKey<String?>("ca", doc: "CA certificate file (PEM) the broker's certificate must chain to.")
    static let cert = OptionKey<String?>("cert", doc: "Client certificate file (PEM), for brokers that want one.")
    static let key = OptionKey<String?>("key", doc: "Client key file (PEM).")
    static let verifyHostname = OptionKey<Bool>("verify_hostname", default: true, doc: "Check that the certificate names `host`.")

    static let spec = NodeSpec(
        type: "mqtt.broker", kind: .connection,
        summary: "An MQTT broker connection (host, credentials, protocol, session, TLS) for mqtt.in and mqtt.out",
        doc: """
            Declared under the flow's `connections` and named by the `connection` option of `mqtt.in` and
            `mqtt.out`. Each node connects with its own client id, `CLIENT_ID-NODE` (default
            `enchufe-FLOW-NODE`), reconnects by itself with backoff (1 s doubling to 30 s) and subscribes
            again after every reconnect. With `clean_session: false` (the default) the broker keeps the
            session of an `mqtt.in` node while the hub is away and delivers what it missed (QoS 1 and 2).
            TLS verifies the broker's certificate against `tls.ca` and its host name, unless
            `tls.verify_hostname: false`.
            """,
        options: [
            host.spec, port.spec, clientID.spec, username.spec, password.spec, keepalive.spec, `protocol`.spec,
            cleanSession.spec, inflight.spec,
            OptionSpec("tls", .object([ca.spec, cert.spec, key.spec, verifyHostname.spec]), doc: "TLS settings; with them the connection is encrypted."),
        ],
        example: """
            connections:
              site-broker:
                type: mqtt.broker
                host: mqtt.example.net
                port: 8883
                username: hub
                password: ${MQTT_PASSWORD}
                tls: { ca: /etc/enchufe/ca.pem }
            """,
        make: nil)

    /// The settings of connection `options` for the node of `context`. Where several named instances
    /// may run the flow, the client id ends with the instance's id: a broker lets one client have an id.
    static func settings(_ options: NodeOptions, for context: NodeBuildContext) -> MQTTSettings {
        let clientID = "\(options[Self.clientID] ?? "enchufe-\(context.flow)")-\(context.node)" + (context.instance.map { "-\($0)" } ?? "")
        var settings = MQTTSettings(host: options[host], port: options[port], clientID: clientID)
        settings.username = options[username]
        settings.password = options[password]
        settings.keepalive = options[keepalive]
        settings.protocolVersion = options[`protocol`]
        settings.cleanSession = options[cleanSession]
        settings.inflight = options[inflight]
        if let tls = options.object("tls") {
            settings.tls = .init(ca: tls[ca], cert: tls[cert], key: tls[key], verifyHostname: tls[verifyHostname])
        }
        return settings
    }
}

/// A subscription's or a publication's quality of service.
enum MQTTQoS: String, OptionEnumeration {
    case atMostOnce = "0", atLeastOnce = "1", exactlyOnce = "2"

    var level: Int {
        switch self {
        case .atMostOnce: 0
        case .atLeastOnce: 1
        case .exactlyOnce: 2
        }
    }
}
