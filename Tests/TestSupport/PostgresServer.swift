import Foundation
import Synchronization

/// A throwaway PostgreSQL server for tests and benchmarks: `initdb` in a temporary directory (as the
/// `postgres` user when running as root), listening on 127.0.0.1 on a free port, trust auth for the
/// `postgres` role. Stopped when the process exits, or by `stop()`.
///
///     let server = try await PostgresServer.shared()
///     let url = try server.createDatabase()          // postgres://postgres@127.0.0.1:PORT/test_xxx
public final class PostgresServer: Sendable {
    public let port: Int
    public let directory: URL
    public var dataDirectory: String { directory.appendingPathComponent("data").path }
    private let bin: String

    /// One server shared by every test in the process, started on first use.
    public static func shared() async throws -> PostgresServer {
        try await sharedServer.value
    }

    private static let sharedServer = Task { try PostgresServer.start() }

    /// The server's binaries: `ENCHUFE_PG_BIN`, else Debian's PostgreSQL 15 (or the newest installed).
    static func binaries() throws -> String {
        if let bin = ProcessInfo.processInfo.environment["ENCHUFE_PG_BIN"] { return bin }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        let preferred = versions.contains(15) ? [15] + versions.reversed() : versions.reversed()
        guard let bin = Commands.find(preferred.map { "\(root)/\($0)/bin/postgres" }) else {
            throw CommandError(
                command: "postgres", result: CommandResult(status: 127, output: "PostgreSQL is not installed (Debian: apt-get install postgresql; or set ENCHUFE_PG_BIN)"))
        }
        return URL(fileURLWithPath: bin).deletingLastPathComponent().path
    }

    /// Starts a new server. `durable: false` turns fsync off (faster tests; a crash of the machine,
    /// not of the server, could lose data).
    public static func start(durable: Bool = false) throws -> PostgresServer {
        let bin = try binaries()
        let directory = try Commands.makeTemporaryDirectory(prefix: "enchufe-pg")
        if Commands.isRoot { try Commands.run("/bin/chown", ["-R", "postgres:postgres", directory.path]) }
        try asServerUser(bin + "/initdb", ["-D", directory.appendingPathComponent("data").path, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        var settings = "listen_addresses = '127.0.0.1'\nunix_socket_directories = '\(directory.path)'\nmax_connections = 200\n"
        if !durable { settings += "fsync = off\nfull_page_writes = off\n" }
        let conf = directory.appendingPathComponent("data/postgresql.conf")
        let handle = try FileHandle(forWritingTo: conf)
        handle.seekToEndOfFile()
        handle.write(settings.data(using: .utf8)!)
        try handle.close()

        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try Commands.freeLoopbackPort()
            let server = PostgresServer(port: port, directory: directory, bin: bin)
            do {
                try server.startProcess()
                running.withLock { $0.append(server) }
                _ = registerExitHandler
                return server
            } catch {
                lastError = error  // the port was taken in between: try another
            }
        }
        throw lastError!
    }

    private init(port: Int, directory: URL, bin: String) {
        self.port = port
        self.directory = directory
        self.bin = bin
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    public func url(database: String = "postgres") -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// Creates an empty database with a fresh name and returns its URL.
    public func createDatabase(prefix: String = "test") throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try psql("CREATE DATABASE \(name)")
        return url(database: name)
    }

    /// Runs SQL with psql and returns its unaligned, tuples-only output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try Commands.run(bin + "/psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql]).output
    }

    /// The database name in a URL made by `url(database:)`.
    public static func database(in url: String) -> String {
        String(url.split(separator: "/").last!.split(separator: "?").first!)
    }

    public var psqlPath: String { bin + "/psql" }

    private func startProcess() throws {
        try Self.asServerUser(bin + "/pg_ctl", [
            "-D", dataDirectory, "-l", directory.appendingPathComponent("server.log").path, "-w", "-t", "60",
            "-o", "-p \(port)", "start",
        ])
    }

    /// Starts the server again after `stop()` (same port and data).
    public func start() throws { try startProcess() }

    /// Stops the server: `fast` rolls back open transactions and closes connections, as a restart by
    /// an administrator does; `immediate` is a crash.
    public func stop(mode: String = "fast") throws {
        try Self.asServerUser(bin + "/pg_ctl", ["-D", dataDirectory, "-w", "-t", "60", "-m", mode, "stop"])
    }

    /// Stops the server and deletes its directory.
    public func destroy() {
        _ = try? Self.asServerUser(bin + "/pg_ctl", ["-D", dataDirectory, "-m", "immediate", "stop"], check: false)
        try? FileManager.default.removeItem(at: directory)
        Self.running.withLock { $0.removeAll { $0 === self } }
    }

    @discardableResult
    static func asServerUser(_ executable: String, _ arguments: [String], check: Bool = true) throws -> CommandResult {
        guard Commands.isRoot else { return try Commands.run(executable, arguments, check: check) }
        let quoted = ([executable] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try Commands.run("/bin/su", ["postgres", "-s", "/bin/sh", "-c", quoted], check: check)
    }

    private static let running = Mutex<[PostgresServer]>([])

    /// Stops every server still running when the test process exits.
    private static let registerExitHandler: Void = {
        atexit {
            for server in PostgresServer.running.withLock({ $0 }) { server.destroy() }
        }
    }()
}
