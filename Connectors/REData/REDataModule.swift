import EnchufeCore

/// Red Eléctrica's node types: `redata`, `redata.prices` and `esios`.
public enum REDataModule {
    public static let specs: [NodeSpec] = [REDataNode.spec, REDataPricesNode.spec, ESIOSNode.spec]
}
