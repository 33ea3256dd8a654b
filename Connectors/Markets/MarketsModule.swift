import EnchufeCore
import HTTPPull

/// The wholesale market's node types: `omie.prices`.
public enum MarketsModule {
    public static let specs: [NodeSpec] = [OMIEPricesNode.spec]
}

extension PullNodeOptions {
    /// OMIE's public file downloads: one small file a day, so a modest rate is plenty.
    static let omie = PullNodeOptions(baseURL: "https://www.omie.es", requestsPerMinute: 30)
}
