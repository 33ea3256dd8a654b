import EnchufeCore
import Foundation

/// `mqtt.broker`: how the flow's MQTT nodes reach a broker. Each node connects with its own client
/// id, `CLIENT_ID-NODE`, so a persistent session belongs to one node and nodes never take each
/// other's connection.
enum MQTTBroker {
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
            OptionSpec("host", .string, default: "127.0.0.1", doc: "Broker host name or address."),
            OptionSpec("port", .integer, default: 1883, doc: "Broker port (8883 is usual with TLS)."),
            OptionSpec("client_id", .string, doc: "Client id prefix; each node adds `-NODE`, and `-ID` with a shared (PostgreSQL) store and `--instance ID` (default `enchufe-FLOW`)."),
            OptionSpec("username", .string, doc: "User name, if the broker wants one."),
            OptionSpec("password", .string, secret: true, doc: "Password (use `${ENV}`).", example: "${MQTT_PASSWORD}"),
            OptionSpec("keepalive", .integer, default: 30, doc: "Seconds between keepalive pings."),
            OptionSpec("protocol", .enumeration(["3.1.1", "5"]), default: "5", doc: "MQTT version; shared subscriptions need 5."),
            OptionSpec("clean_session", .boolean, default: false, doc: "Start each connection with a new session (messages sent while away are lost)."),
            OptionSpec("inflight", .integer, default: 100, doc: "Most QoS 1/2 messages in flight each way."),
            OptionSpec("tls", .object([
                OptionSpec("ca", .string, doc: "CA certificate file (PEM) the broker's certificate must chain to."),
                OptionSpec("cert", .string, doc: "Client certificate file (PEM), for brokers that want one."),
                OptionSpec("key", .string, doc: "Client key file (PEM)."),
                OptionSpec("verify_hostname", .boolean, default: true, doc: "Check that the certificate names `host`."),
            ]), doc: "TLS settings; with them the connection is encrypted."),
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
        let clientID = "\(options.string("client_id") ?? "enchufe-\(context.flow)")-\(context.node)" + (context.instance.map { "-\($0)" } ?? "")
        var settings = MQTTSettings(host: options.string("host") ?? "127.0.0.1", port: options.int("port") ?? 1883, clientID: clientID)
        settings.username = options.string("username")
        settings.password = options.string("password")
        settings.keepalive = options.int("keepalive") ?? 30
        settings.protocolVersion = options.string("protocol") ?? "5"
        settings.cleanSession = options.bool("clean_session") ?? false
        settings.inflight = options.int("inflight") ?? 100
        if let tls = options.object("tls") {
            settings.tls = .init(ca: tls.string("ca"), cert: tls.string("cert"), key: tls.string("key"), verifyHostname: tls.bool("verify_hostname") ?? true)
        }
        return settings
    }
}
