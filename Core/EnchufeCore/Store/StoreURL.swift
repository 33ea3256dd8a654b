import Foundation

/// Opens a store from its URL: `sqlite:PATH` (relative or absolute), `sqlite::memory:`, or a scheme a
/// store module registered (`postgres://...`).
public struct StoreOpener: Sendable {
    public typealias Open = @Sendable (_ url: String) async throws -> any Store

    private var openers: [String: Open] = [:]

    public init() {
        register(scheme: "sqlite") { url in try SQLiteStore(url: url) }
    }

    public mutating func register(scheme: String, _ open: @escaping Open) {
        openers[scheme] = open
    }

    public func open(_ url: String) async throws -> any Store {
        let scheme = url.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        guard let open = openers[scheme] else {
            throw StoreError.unsupportedURL(Self.redacted(url), schemes: openers.keys.sorted())
        }
        return try await open(url)
    }

    /// The URL with its password (if any) replaced by `***`.
    public static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://"),
            let at = url[schemeEnd.upperBound...].firstIndex(of: "@")
        else { return url }
        let userinfo = url[schemeEnd.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}

public enum StoreError: Error, CustomStringConvertible {
    case unsupportedURL(String, schemes: [String])
    case cannotOpen(String, reason: String)

    public var description: String {
        switch self {
        case .unsupportedURL(let url, let schemes):
            return "store URL '\(url)' is not supported (use \(schemes.map { "\($0):..." }.joined(separator: " or ")))"
        case .cannotOpen(let url, let reason):
            return "cannot open the store \(url): \(reason)"
        }
    }
}
