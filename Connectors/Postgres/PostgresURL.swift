import EnchufeCore
import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://` (or `postgresql://`) URL as libpq reads it:
/// `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=...&pool_size=...&connect_timeout=...`.
/// `host=/run/postgresql` in the query selects a Unix socket directory. The password may be
/// percent-encoded; it never appears in `display`.
struct PostgresURL: Sendable, Equatable {
    var host = "127.0.0.1"
    var port = 5432
    var socketDirectory: String?
    var user = "postgres"
    var password: String?
    var database = "postgres"
    /// `disable`, `prefer` (default), `require`, `verify-ca`, `verify-full`: libpq's meanings.
    var sslMode = "prefer"
    var poolSize = 10
    /// Seconds to wait for a connection before the store counts as unavailable.
    var connectTimeout = 5
    var display: String

    static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    init(_ text: String) throws {
        func bad(_ why: String) -> StoreError { .cannotOpen(StoreOpener.redacted(text), reason: why) }
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"), let components = URLComponents(string: text) else {
            throw bad("not a URL of the form postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        display = StoreOpener.redacted(text)
        if let h = components.host, !h.isEmpty { host = h }
        if let p = components.port { port = p }
        if let u = components.user, !u.isEmpty { user = u.removingPercentEncoding ?? u }
        password = components.percentEncodedPassword.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if !path.isEmpty { database = path.removingPercentEncoding ?? path }
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard Self.sslModes.contains(value) else { throw bad("sslmode must be one of \(Self.sslModes.joined(separator: ", "))") }
                sslMode = value
            case "host":
                if value.hasPrefix("/") { socketDirectory = value } else { host = value }
            case "port":
                guard let p = Int(value), (1...65535).contains(p) else { throw bad("port must be a number from 1 to 65535") }
                port = p
            case "user": user = value
            case "password": password = value
            case "dbname": database = value
            case "pool_size":
                guard let n = Int(value), n >= 1 else { throw bad("pool_size must be at least 1") }
                poolSize = n
            case "connect_timeout":
                guard let n = Int(value), n >= 1 else { throw bad("connect_timeout must be at least 1 (seconds)") }
                connectTimeout = n
            case "application_name":
                break
            default:
                throw bad("unknown parameter '\(item.name)' (known: sslmode, host, port, user, password, dbname, pool_size, connect_timeout, application_name)")
            }
        }
    }

    /// Where the server is, for messages: `127.0.0.1:5432` or the socket path.
    var address: String {
        socketDirectory.map { "\($0)/.s.PGSQL.\(port)" } ?? "\(host):\(port)"
    }

    var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketDirectory {
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            var tls = TLSConfiguration.makeClientConfiguration()
            let mode: PostgresClient.Configuration.TLS
            switch sslMode {
            case "disable":
                mode = .disable
            case "allow", "prefer":
                tls.certificateVerification = .none
                mode = .prefer(tls)
            case "require":
                tls.certificateVerification = .none
                mode = .require(tls)
            case "verify-ca":
                tls.certificateVerification = .noHostnameVerification
                mode = .require(tls)
            default:
                mode = .require(tls)
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: mode)
        }
        configuration.options.maximumConnections = poolSize
        configuration.options.connectTimeout = .seconds(connectTimeout)
        configuration.options.additionalStartupParameters = [("application_name", "enchufe")]
        return configuration
    }
}
