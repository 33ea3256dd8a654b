/// Replaces secret values (option values marked `secret`, store passwords) with `***` in any text
/// before it is logged, stored as a dead letter's reason or served.
public struct Redactor: Sendable {
    private var secrets: [String]

    public init(secrets: some Sequence<String> = []) {
        // Each secret also as it reads inside JSON text (a `"` or `\` in it is escaped there), since
        // taps and dead letters show messages as JSON. Longest first, so a secret containing another
        // is hidden whole; very short values would blank out ordinary words.
        let plain = Set(secrets).filter { $0.count >= 4 }
        let escaped = plain.map { String(JSONValue.string($0).jsonText().dropFirst().dropLast()) }
        self.secrets = Set(plain).union(escaped).sorted { $0.count > $1.count }
    }

    public mutating func add(_ more: some Sequence<String>) {
        self = Redactor(secrets: secrets + Array(more))
    }

    public func redact(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: "***")
        }
        return result
    }
}

import Foundation
