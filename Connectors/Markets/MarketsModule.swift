import EnchufeCore
import HTTPPull

/// The wholesale market's node types: `omie.prices`, `entsoe` and `market.interconnection`.
public enum MarketsModule {
    public static let specs: [NodeSpec] = [OMIEPricesNode.spec, EntsoeNode.spec, InterconnectionNode.spec]
}

extension PullNodeOptions {
    /// OMIE's public file downloads: one small file a day, so a modest rate is plenty.
    static let omie = PullNodeOptions(baseURL: "https://www.omie.es", requestsPerMinute: 30)
}

extension PullNodeOptions {
    /// The Transparency Platform allows 400 requests a minute per token and bans beyond: keep far below.
    static let entsoe = PullNodeOptions(baseURL: "https://web-api.tp.entsoe.eu", requestsPerMinute: 60)
}
