import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A command run to completion, its output captured.
public struct CommandResult: Sendable {
    public var status: Int32
    public var output: String
}

public struct CommandError: Error, CustomStringConvertible {
    public var command: String
    public var result: CommandResult
    public var description: String { "`\(command)` exited with \(result.status): \(result.output)" }
}

public enum Commands {
    /// Runs `executable` with `arguments`, waits, and returns its exit status and combined output.
    /// (posix_spawn and waitpid: Foundation's Process can miss the exit of a program that leaves a
    /// daemon behind, as `pg_ctl start` does.)
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], check: Bool = true) throws -> CommandResult {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-cmd-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let exitCode = wait(try spawn(executable, arguments, output: log))
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let result = CommandResult(status: exitCode, output: text.trimmingCharacters(in: .whitespacesAndNewlines))
        if check && result.status != 0 {
            throw CommandError(command: ([executable] + arguments).joined(separator: " "), result: result)
        }
        return result
    }

    /// Starts `executable` with `arguments` (stdin from /dev/null, stdout and stderr into the file
    /// `output`) and returns its process id without waiting. `sharing` is given to the program as
    /// its descriptor 3: the same open file as the caller's.
    public static func spawn(_ executable: String, _ arguments: [String], output: String, sharing: Int32? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        if let sharing { posix_spawn_file_actions_adddup2(&actions, sharing, 3) }
        let env = ProcessInfo.processInfo.environment.map { "\($0)=\($1)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        // A clean signal mask and default handlers: the test process's threads block signals, and a
        // program started from here (mosquitto -d, perf record) would otherwise never see its SIGTERM
        // or SIGINT (Foundation's Process passes the blocked mask on).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        sigdelset(&allSignals, SIGKILL)
        sigdelset(&allSignals, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            throw CommandError(command: executable, result: CommandResult(status: spawned, output: String(cString: strerror(spawned))))
        }
        return pid
    }

    /// Waits for a process started by `spawn` to end; its exit status (128 + the signal that ended it).
    @discardableResult
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// The first of `candidates` that exists and is executable.
    public static func find(_ candidates: [String]) -> String? {
        candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// True when the tests run as root (as on CI machines).
    public static var isRoot: Bool { geteuid() == 0 }

    /// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it).
    public static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CommandError(command: "socket", result: CommandResult(status: errno, output: "socket() failed")) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw CommandError(command: "bind", result: CommandResult(status: errno, output: "bind() failed")) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A new directory for a test server: under `ENCHUFE_TEST_TMP` when the test command set it (it
    /// stops and removes whatever is left there), else under the system's temporary directory.
    public static func makeTemporaryDirectory(prefix: String) throws -> URL {
        let base = ProcessInfo.processInfo.environment["ENCHUFE_TEST_TMP"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory
        let dir = base.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
