import EnchufeCore

/// The node types of this module, for the composition root: `simulate.community`.
public enum SimulatorModule {
    public static let specs: [NodeSpec] = [SimulateCommunityNode.spec]
}
