import Crypto
import Foundation

/// API keys (SPEC §6): each belongs to one tenant and has scopes (`read`, `ingest`, `admin`, and
/// `totals`: a community's totals on its dashboard and nothing per member, for members). A key
/// is shown once, when it is created; the store keeps only its SHA-256 (a key is 256 random bits,
/// so a plain hash is enough — no password to stretch), compared in constant time.
public enum APIKeys {
    public static let scopes = ["read", "ingest", "admin", "totals"]

    /// Whether a key with `scopes` may use a route that needs `scope`: `admin` may do anything, and
    /// what `totals` shows is part of what `read` shows.
    public static func allows(_ scopes: [String], _ scope: String) -> Bool {
        scopes.contains(scope) || scopes.contains("admin") || (scope == "totals" && scopes.contains("read"))
    }

    /// A new key: `enk_ID_SECRET`, ID (8 hex) naming it in lists and logs, SECRET 43 base64url
    /// characters of randomness.
    public static func create(tenant: String, scopes: [String], name: String, at: Date, store: any Store) async throws -> (APIKeyRecord, key: String) {
        let unknown = scopes.filter { !Self.scopes.contains($0) }
        guard !scopes.isEmpty, unknown.isEmpty else {
            throw APIKeyError("scopes must be among \(Self.scopes.joined(separator: ", "))" + (unknown.isEmpty ? "" : "; not \(unknown.joined(separator: ", "))"))
        }
        guard !tenant.isEmpty else { throw APIKeyError("a key needs a tenant") }
        var generator = SystemRandomNumberGenerator()
        let id = String(format: "%08x", generator.next() as UInt32)
        let secret = Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let key = "enk_\(id)_\(secret)"
        let record = APIKeyRecord(id: id, tenant: tenant, name: name, scopes: scopes, hash: hash(key), createdAt: at)
        try await store.saveAPIKey(record)
        try await store.appendAudit(tenant: tenant, actor: "cli", action: "key.create", detail: ["id": .string(id), "name": .string(name), "scopes": .array(scopes.map(JSONValue.string))], at: at)
        return (record, key)
    }

    public static func hash(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The key an `Authorization: Bearer KEY` header names, if it exists and is not revoked.
    public static func authenticate(_ authorization: String?, store: any Store) async throws -> APIKeyRecord? {
        guard let header = authorization, header.lowercased().hasPrefix("bearer ") else { return nil }
        let key = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        guard key.hasPrefix("enk_"), key.count < 200 else { return nil }
        let digest = hash(key)
        guard let record = try await store.apiKey(hash: digest), record.revokedAt == nil else { return nil }
        // The store found it by its hash; compare again in constant time all the same.
        guard constantTimeEqual(Array(record.hash.utf8), Array(digest.utf8)) else { return nil }
        return record
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

public struct APIKeyError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
