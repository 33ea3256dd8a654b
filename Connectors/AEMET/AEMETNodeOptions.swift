import EnchufeCore
import Foundation
import HTTPPull

/// What every AEMET node type shares: its options, its client, its readings, its documentation.
extension AEMETModule {
    static let base = "https://opendata.aemet.es"

    /// The options every AEMET node has: the key, the per-minute limit (both steps count), a minute's
    /// wait after a 429 (AEMET sends no Retry-After), and what a trace of precipitation is stored as.
    static func commonOptions(days: Bool) -> [OptionSpec] {
        [
            OptionSpec("api_key", .string, secret: true, doc: "AEMET OpenData API key (sent in the api_key header, never in URLs or logs).", example: "${env:AEMET_API_KEY}"),
            OptionSpec("trace_mm", .number, default: 0.05, doc: "What a trace of precipitation (`Ip`, under 0.1 mm) is stored as; 0 to count it as dry."),
        ] + PullNodeOptions.specs(baseURL: base, requestsPerMinute: 40, timeout: "60s", backoff: "60s", days: days)
    }

    /// The client of a node; refuses to start without a key, except in flow tests.
    static func client(_ build: NodeBuildContext, type: String) throws -> AEMETClient {
        let key = build.options.secret("api_key").flatMap { $0.reveal().isEmpty ? nil : $0 }
        if key == nil, !build.testing {
            throw PermanentError("needs an AEMET OpenData API key: set `api_key` (e.g. api_key: ${env:AEMET_API_KEY}); request one at https://opendata.aemet.es/centrodedescargas/altaUsuario")
        }
        return AEMETClient(
            client: PullNodeOptions.client(build, type: type, requestsPerMinute: 40, backoff: .seconds(60), errorBody: AEMETClient.errorBody),
            base: PullNodeOptions.baseURL(build.options, default: base), apiKey: key)
    }

    static func readings(_ build: NodeBuildContext) -> AEMETReadings {
        AEMETReadings(traceMM: build.options.double("trace_mm") ?? 0.05)
    }

    static let twoStepDoc = """
        Each message it receives is a trigger (wire a `schedule` into it). AEMET answers in two steps: an
        envelope whose `datos` link holds the data, fetched at once and never stored; `estado` inside a
        200 answer counts (404: no data, not an error), 401 is a refused key (not retried), 429 the
        per-minute limit (both steps count against `requests_per_minute`, default 40; AEMET sends no
        Retry-After, so the wait is `request_backoff`, default a minute). Bodies are decoded by their
        charset, else UTF-8, else ISO-8859-15. Values are read leniently: numbers or strings, decimal
        commas, `Ip` (a trace of precipitation, stored as `trace_mm`), missing fields skipped.
        """
}
