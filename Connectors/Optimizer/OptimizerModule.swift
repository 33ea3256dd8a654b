import EnchufeCore

/// The node types that plan: `optimize.schedule`.
public enum OptimizerModule {
    public static let specs: [NodeSpec] = [OptimizeScheduleNode.spec]
}
