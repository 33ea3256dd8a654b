import EnchufeCore
import Foundation

/// The queries an account sent to Datadis and when, kept in the store (so it holds across
/// restarts, and across instances sharing a store): Datadis refuses an identical query repeated
/// within 24 hours (429 "Consulta ya realizada en las últimas 24 horas") and users have been locked
/// out for days by clients that retried. A query is entered *before* it is sent — a timeout or a
/// crash may still have used the window — and is not sent again until 24 hours later.
public struct DatadisLedger: Sendable {
    public static let window: TimeInterval = 24 * 3600

    public struct Entry: Sendable, Equatable {
        public var askedAt: Date
        public var outcome: String
    }

    let store: any NamedValueStore
    let tenant: String
    /// The account, as a hash (its NIF is not written in the store's keys).
    let account: String

    public init(store: any NamedValueStore, tenant: String, username: String) {
        self.store = store
        self.tenant = tenant
        account = String(StableHash.of(username.utf8), radix: 16)
    }

    /// The canonical text of a query: the endpoint and its parameters, sorted.
    public static func key(_ endpoint: String, _ query: [(String, String)]) -> String {
        endpoint + "?" + query.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Where the entry of query `key` is kept: the named value `datadis-ledger/ACCOUNT`, `key`.
    func namedKey(_ key: String) -> NamedKey {
        NamedKey(tenant: tenant, namespace: "datadis-ledger/" + account, name: key)
    }

    public func entry(_ key: String) async throws -> Entry? {
        guard let text = try await store.value(namedKey(key), now: Date()), let json = try? JSONValue.parse(text),
            let at = json["asked_at"]?.stringValue.flatMap(ISO8601.date)
        else { return nil }
        return Entry(askedAt: at, outcome: json["outcome"]?.stringValue ?? "")
    }

    public func record(_ key: String, at: Date, outcome: String) async throws {
        let value: JSONValue = ["asked_at": .string(ISO8601.string(at)), "outcome": .string(outcome)]
        try await store.setValue(namedKey(key), value.jsonText(), expiresAt: nil)
    }

}
