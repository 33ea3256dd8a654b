import Dispatch
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One run of a plugin program: its stdout read line by line into a small bounded buffer (a
/// reader thread that blocks when it is full, so a program that writes faster than the flow takes
/// blocks on its pipe: no unbounded buffering), its stdin written on a queue of its own (a program
/// that does not read never blocks the hub's tasks), its stderr copied to the hub's log.
final class PluginProcess: Sendable {
    let process: Process
    private let stdin: FileHandle
    private let lines: LineBuffer
    private let writes = DispatchQueue(label: "enchufe.plugin.stdin")
    private let exited = OneShot()

    init(command: [String], directory: URL, logger: Logger) throws {
        let process = Process()
        var arguments = command
        let executable = arguments.removeFirst()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable, relativeTo: directory)
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            arguments.insert(executable, at: 0)
        }
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        let exited = self.exited
        process.terminationHandler = { _ in exited.fire() }
        try process.run()
        self.process = process
        stdin = input.fileHandleForWriting
        let lines = LineBuffer(capacity: 64)
        self.lines = lines
        Thread.detachNewThread {
            Self.readLines(output.fileHandleForReading) { lines.put($0) }
            lines.close()
        }
        Thread.detachNewThread {
            Self.readLines(errors.fileHandleForReading) { line in
                if !line.isEmpty { logger.warning("plugin stderr: \(line)") }
            }
        }
    }

    /// Reads `handle` to its end, handing each line to `body` (which may block).
    static func readLines(_ handle: FileHandle, _ body: (String) -> Void) {
        var pending = Data()
        PipeReading.chunks(handle) { chunk in
            pending.append(contentsOf: chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                body(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                pending = Data(pending[(newline + 1)...])
            }
        }
        if !pending.isEmpty { body(String(decoding: pending, as: UTF8.self)) }
    }

    /// The next line the program wrote, nil at its end (or when `deadline` passed: see `timedOut`).
    func nextLine(until deadline: ContinuousClock.Instant? = nil) async -> PluginLine {
        await lines.take(until: deadline)
    }

    /// Writes one line to the program's stdin; throws if the program is gone.
    func send(_ json: JSONValue) async throws {
        let data = Data((json.jsonText() + "\n").utf8)
        let handle = stdin
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            writes.async {
                do {
                    try handle.write(contentsOf: data)
                    c.resume()
                } catch {
                    c.resume(throwing: error)
                }
            }
        }
    }

    var isRunning: Bool { process.isRunning }

    /// SIGTERM, then SIGKILL if it is still there after a second.
    func stop() {
        lines.abandon()
        try? stdin.close()
        guard process.isRunning else { return }
        process.terminate()
        let pid = process.processIdentifier
        let process = self.process
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) {
            if process.isRunning { kill(pid, SIGKILL) }
        }
    }

    /// How it ended, once it has.
    var ending: String {
        guard exited.isFired else { return "still running" }
        return process.terminationReason == .uncaughtSignal ? "killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
    }

    /// Waits (at most `limit`) for the program to exit, as it does soon after closing its stdout;
    /// true if it exited with status 0.
    func waitForExit(limit: Duration = .seconds(2)) async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.exited.wait() }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
        if !exited.isFired { stop() }
        return exited.isFired && process.terminationReason == .exit && process.terminationStatus == 0
    }
}

enum PluginLine: Sendable {
    case line(String)
    case end
    case timedOut
}

/// Lines handed from a reader thread (which blocks while `capacity` lines wait) to one async taker.
final class LineBuffer: Sendable {
    private struct State {
        var lines: [String] = []
        var closed = false
        /// The hub stopped listening (the program was stopped): lines are dropped, the reader never blocks.
        var abandoned = false
        var taker: (id: UInt64, continuation: CheckedContinuation<PluginLine, Never>)?
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    private let room: DispatchSemaphore

    init(capacity: Int) {
        room = DispatchSemaphore(value: capacity)
    }

    func put(_ line: String) {
        room.wait()
        if state.withLock({ $0.abandoned }) {
            room.signal()
            return
        }
        let taker = state.withLock { s -> CheckedContinuation<PluginLine, Never>? in
            if let t = s.taker {
                s.taker = nil
                return t.continuation
            }
            s.lines.append(line)
            return nil
        }
        // Handed over directly: the taker gives the room back, as it does for a buffered line.
        taker?.resume(returning: .line(line))
    }

    /// Whether a `put` now would wait for the taker (the buffer is full).
    var isFull: Bool {
        guard room.wait(timeout: .now()) == .success else { return true }
        room.signal()
        return false
    }

    /// No more lines are wanted: a reader waiting for room goes on (and drops what it reads).
    func abandon() {
        state.withLock { $0.abandoned = true }
        room.signal()
    }

    func close() {
        let taker = state.withLock { s -> CheckedContinuation<PluginLine, Never>? in
            s.closed = true
            defer { s.taker = nil }
            return s.taker?.continuation
        }
        taker?.resume(returning: .end)
    }

    func take(until deadline: ContinuousClock.Instant?) async -> PluginLine {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        let timer = deadline.map { deadline in
            Task {
                try await Task.sleep(until: deadline)
                let c = self.state.withLock { s -> CheckedContinuation<PluginLine, Never>? in
                    guard let t = s.taker, t.id == id else { return nil }
                    s.taker = nil
                    return t.continuation
                }
                c?.resume(returning: .timedOut)
            }
        }
        defer { timer?.cancel() }
        let result = await withCheckedContinuation { (c: CheckedContinuation<PluginLine, Never>) in
            let now = state.withLock { s -> PluginLine? in
                if !s.lines.isEmpty { return .line(s.lines.removeFirst()) }
                if s.closed { return .end }
                s.taker = (id, c)
                return nil
            }
            if let now { c.resume(returning: now) }
        }
        if case .line = result { room.signal() }
        return result
    }
}
