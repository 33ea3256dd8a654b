import EnchufeCore
import Foundation
import HTTPPull

/// What every AEMET node type shares: its options, its client, its readings, its documentation.
extension AEMETModule {
    /// The per-minute limit (both steps count) and a minute's wait after a 429 (AEMET sends no Retry-After).
    static let dayPull = PullNodeOptions(
        baseURL: "https://opendata.aemet.es", requestsPerMinute: 40, timeout: .seconds(60), backoff: .seconds(60), days: true)
    static let pull = PullNodeOptions(
        baseURL: "https://opendata.aemet.es", requestsPerMinute: 40, timeout: .seconds(60), backoff: .seconds(60), days: false)

    static let apiKey = OptionKey<Secret?>(
        "api_key", secret: true, doc: "AEMET OpenData API key (sent in the api_key header, never in URLs or logs).",
        example: "${env:AEMET_API_KEY}")
    static let traceMM = OptionKey<Double>(
        "trace_mm", default: 0.05, doc: "What a trace of precipitation (`Ip`, under 0.1 mm) is stored as; 0 to count it as dry.")

    /// The options every AEMET node has: the key, what a trace of precipitation is stored as, and the
    /// pull options (with `day`/`from`/`until` when `days`).
    static func commonOptions(days: Bool) -> [OptionSpec] {
        [apiKey.spec, traceMM.spec] + (days ? dayPull : pull).specs
    }

    /// The client of a node; refuses to start without a key, except in flow tests.
    static func client(_ build: NodeBuildContext, type: String) throws -> AEMETClient {
        let key = try build.credential(
            apiKey,
            missing: "needs an AEMET OpenData API key: set `api_key` (e.g. api_key: ${env:AEMET_API_KEY}); request one at https://opendata.aemet.es/centrodedescargas/altaUsuario")
        return AEMETClient(client: pull.client(build, type: type, errorBody: AEMETClient.errorBody), base: pull.base(build.options), apiKey: key)
    }

    static func readings(_ build: NodeBuildContext) -> AEMETReadings {
        AEMETReadings(traceMM: build.options[traceMM])
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
