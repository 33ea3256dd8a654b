import Foundation

/// Canned answers for connector calls, from a flow test's `fixtures` map. When a node context has
/// them, the connectors' HTTP layer answers from here and never touches the network; a call with
/// no canned answer fails.
///
/// Keys are tried from the most to the least specific: the node id, the request's path with its
/// query (`/api/v1/datos?start=...`), its path alone, then the node type (`redata.prices`).
public struct CannedAnswers: Sendable {
    public var answers: [String: Data]

    public init(_ answers: [String: Data] = [:]) {
        self.answers = answers
    }

    public func answer(node: String, type: String, url: URL?) -> Data? {
        var keys = [node]
        if let url {
            if let query = url.query { keys.append(url.path + "?" + query) }
            keys.append(url.path)
        }
        keys.append(type)
        return keys.lazy.compactMap { answers[$0] }.first
    }
}
