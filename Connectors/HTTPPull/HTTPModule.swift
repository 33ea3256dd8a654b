import EnchufeCore

/// The node types of this module that are not pull connectors (the pull machinery is shared by
/// the REData, AEMET and Datadis modules).
public enum HTTPModule {
    public static let specs: [NodeSpec] = [HTTPRequestNode.spec]
}
