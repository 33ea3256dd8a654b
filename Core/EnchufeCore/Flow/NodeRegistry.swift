/// Every node type the hub knows, by type name. `validate`, `schema`, `docs` and `nodes` read it;
/// the composition root (the `enchufe` executable) fills it from Core and the connector modules.
public struct NodeRegistry: Sendable {
    public private(set) var specs: [NodeSpec]
    private var index: [String: Int]

    public init(_ specs: [NodeSpec] = []) {
        self.specs = []
        self.index = [:]
        for spec in specs { register(spec) }
    }

    /// Adds a node type; a later registration of the same type name replaces the earlier one.
    public mutating func register(_ spec: NodeSpec) {
        if let i = index[spec.type] {
            specs[i] = spec
        } else {
            index[spec.type] = specs.count
            specs.append(spec)
        }
    }

    public func spec(_ type: String) -> NodeSpec? {
        index[type].map { specs[$0] }
    }

    /// Specs sorted by type name, for listings.
    public var sorted: [NodeSpec] { specs.sorted { $0.type < $1.type } }
}
