import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway Mosquitto 2 broker for tests and benchmarks: a generated config in a temporary
/// directory, listening on 127.0.0.1 on a free port, anonymous access, persistence on (so a restart
/// keeps persistent sessions and their queued QoS 1/2 messages), no limit on queued messages.
/// Stopped when the process exits, or by `stop()`.
public final class MosquittoServer: Sendable {
    public let port: Int
    public let directory: URL
    private let binary: String

    /// One broker shared by every test in the process, started on first use.
    public static func shared() async throws -> MosquittoServer {
        try await sharedServer.value
    }

    private static let sharedServer = Task { try MosquittoServer.start() }

    /// Starts a new broker; `extraConfig` is appended to the generated configuration (listeners,
    /// password files, TLS).
    public static func start(anonymous: Bool = true, extraConfig: String = "") throws -> MosquittoServer {
        guard let binary = Commands.find([ProcessInfo.processInfo.environment["ENCHUFE_MOSQUITTO"] ?? "", "/usr/sbin/mosquitto", "/usr/bin/mosquitto"]) else {
            throw CommandError(command: "mosquitto", result: CommandResult(status: 127, output: "Mosquitto is not installed (Debian: apt-get install mosquitto)"))
        }
        let directory = try Commands.makeTemporaryDirectory(prefix: "enchufe-mqtt")
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try Commands.freeLoopbackPort()
            let server = MosquittoServer(port: port, directory: directory, binary: binary)
            do {
                try server.writeConfig(anonymous: anonymous, extraConfig)
                if Commands.isRoot { try Commands.run("/bin/chown", ["-R", "mosquitto:mosquitto", directory.path]) }
                try server.start()
                running.withLock { $0.append(server) }
                _ = registerExitHandler
                return server
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    private init(port: Int, directory: URL, binary: String) {
        self.port = port
        self.directory = directory
        self.binary = binary
    }

    var configPath: String { directory.appendingPathComponent("mosquitto.conf").path }
    var pidPath: String { directory.appendingPathComponent("mosquitto.pid").path }
    public var logPath: String { directory.appendingPathComponent("mosquitto.log").path }

    private func writeConfig(anonymous: Bool, _ extra: String) throws {
        try """
            listener \(port) 127.0.0.1
            allow_anonymous \(anonymous)
            persistence true
            persistence_location \(directory.path)/
            autosave_interval 1
            max_queued_messages 0
            max_inflight_messages 0
            pid_file \(pidPath)
            log_dest file \(logPath)
            log_type error
            log_type warning
            log_type notice
            \(Commands.isRoot ? "user mosquitto" : "")
            \(extra)

            """.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// The broker's directory, for files its configuration names (certificates, password files):
    /// readable by the broker's user.
    public static func prepareDirectory() throws -> URL {
        try Commands.makeTemporaryDirectory(prefix: "enchufe-mqtt-files")
    }

    /// Makes files in `directory` readable by the broker (it runs as `mosquitto` when started as root).
    public static func handOver(_ directory: URL) throws {
        if Commands.isRoot { try Commands.run("/bin/chown", ["-R", "mosquitto:mosquitto", directory.path]) }
    }

    /// Starts the broker (again, after `stop()`: same port, same persisted sessions) and waits until
    /// it accepts connections.
    public func start() throws {
        try Commands.run(binary, ["-c", configPath, "-d"])
        let deadline = Date().addingTimeInterval(10)
        while !Commands.isListening(port: port) {
            guard Date() < deadline else {
                throw CommandError(command: binary, result: CommandResult(status: 1, output: "the broker did not listen on \(port): \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")"))
            }
            usleep(20_000)
        }
    }

    /// Stops the broker (SIGTERM; it saves its persistence file) and waits until it is gone.
    public func stop() throws {
        guard let text = try? String(contentsOfFile: pidPath, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while kill(pid, 0) == 0 && Date() < deadline { usleep(20_000) }
    }

    /// Stops the broker and deletes its directory.
    public func destroy() {
        try? stop()
        try? FileManager.default.removeItem(at: directory)
        Self.running.withLock { $0.removeAll { $0 === self } }
    }

    private static let running = Mutex<[MosquittoServer]>([])

    private static let registerExitHandler: Void = {
        atexit {
            for server in MosquittoServer.running.withLock({ $0 }) { server.destroy() }
        }
    }()
}

extension Commands {
    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
