import EnchufeCore
import Foundation
import HTTPPull

/// AEMET OpenData's two-step fetch: the API path answers a small envelope whose `datos` URL holds
/// the data, fetched at once and never stored (it works without the key while it lives). The
/// envelope's `estado` counts as much as the HTTP status: `404` inside a 200 is "no data", `401` a
/// refused key, `429` the per-minute limit; an empty 200 is what AEMET answers when the key header
/// is missing. A data step that says "no data" (an expired link) makes the envelope be asked once more.
public struct AEMETClient: Sendable {
    public let client: PullClient
    public let base: String
    public let apiKey: Secret?

    public init(client: PullClient, base: String, apiKey: Secret?) {
        self.client = client
        self.base = base
        self.apiKey = apiKey
    }

    /// The data of `path` (under `/opendata/api/`): a JSON array for the products the hub reads.
    public func data(_ path: String, context: NodeContext) async throws -> [JSONValue] {
        var headers = ["Accept": "application/json", "Cache-Control": "no-cache"]
        if let apiKey { headers["api_key"] = apiKey.reveal() }
        for attempt in 1...2 {
            let url = try PullNodeOptions.url(base, "/opendata/api/" + path)
            let empty = PullError(.auth, "an empty answer (AEMET answers so when the api_key header is missing)")
            let step = try await client.json(url, headers: headers, context: context, emptyBody: empty) { json -> Step in
                if let array = json.arrayValue { return .data(array) }  // a flow test's fixture may be the data itself
                try Self.check(json)
                guard let datos = json["datos"]?.stringValue, let link = URL(string: datos) else {
                    throw PullError(.malformed, "an AEMET envelope without a 'datos' URL")
                }
                return .link(link)
            }
            guard case .link(let link) = step else {
                if case .data(let array) = step { return array }
                continue
            }
            do {
                return try await client.json(link, headers: ["Accept": "application/json"], context: context) { json in
                    if let array = json.arrayValue { return array }
                    try Self.check(json)
                    throw PullError(.malformed, "the data of \(path) is not a list")
                }
            } catch let error as PullError where error.kind == .noData && attempt == 1 {
                context.logger.debug("the data link of \(path) had nothing (expired?); asking for a new one")
            }
        }
        throw PullError(.noData, "the data link of \(path) had nothing twice")
    }

    enum Step {
        case link(URL)
        case data([JSONValue])
    }

    /// The failure a non-2xx answer with an AEMET envelope means (an HTTP 404 carrying `estado: 404` is "no data").
    @Sendable public static func errorBody(_ json: JSONValue, status: Int) -> PullError? {
        guard json["estado"] != nil else { return nil }
        do {
            try check(json)
            return nil
        } catch {
            return error as? PullError
        }
    }

    /// AEMET's `estado` (and `descripcion`) as the failure it means; nothing for 200.
    static func check(_ json: JSONValue) throws {
        guard let estado = json["estado"].flatMap({ Int($0.templateText) }) else {
            throw PullError(.malformed, "neither data nor an AEMET envelope: \(String(json.jsonText().prefix(200)))")
        }
        let text = json["descripcion"]?.stringValue ?? ""
        switch estado {
        case 200: return
        case 404: throw PullError(.noData, status: 404, text)
        case 401, 403: throw PullError(.auth, status: estado, text)
        case 429: throw PullError(.rateLimit, status: 429, text)
        default: throw PullError(estado >= 500 ? .upstream : .malformed, status: estado, text)
        }
    }
}
