import EnchufeCore

/// AEMET OpenData's node types: `aemet.observations`, `aemet.forecast` and `aemet.climatology`.
public enum AEMETModule {
    public static let specs: [NodeSpec] = [AEMETObservationsNode.spec, AEMETForecastNode.spec, AEMETClimatologyNode.spec]
}
