import EnchufeCore

/// What this module adds to a build of the hub: `mqtt.broker`, `mqtt.in` and `mqtt.out`.
public enum MQTTModule {
    public static let specs: [NodeSpec] = [MQTTBroker.spec, MQTTInNode.spec, MQTTOutNode.spec]
}
