import EnchufeCore

/// Datadis' node types: `datadis.supplies`, `datadis.contracts`, `datadis.consumption`, `datadis.max_power`.
public enum DatadisModule {
    public static let specs: [NodeSpec] = [
        DatadisSuppliesNode.spec, DatadisContractsNode.spec, DatadisCurveNode.consumptionSpec, DatadisCurveNode.maxPowerSpec,
    ]
}
