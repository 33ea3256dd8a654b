import HTTPPull

/// The two APIs this module pulls from, with their defaults: REData (`redata`, `redata.prices`)
/// allows more than ESIOS' anonymous indicators (`esios`).
extension PullNodeOptions {
    static let redata = PullNodeOptions(baseURL: "https://apidatos.ree.es", requestsPerMinute: 60)
    static let esios = PullNodeOptions(baseURL: "https://api.esios.ree.es", requestsPerMinute: 30)
}
