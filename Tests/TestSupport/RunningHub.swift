import EnchufeCore
import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `enchufe run` as a child process: its log collected as it comes, its HTTP address read from the log
/// (run it with `--http 127.0.0.1:0`).
public final class RunningHub: @unchecked Sendable {
    public let process: Process
    public let base: String
    private let log: CollectedLog

    public init(binary: URL, _ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        self.process = process
        let log = CollectedLog()
        self.log = log
        let portFound = DispatchSemaphore(value: 0)
        // Reads the whole log until the process ends, so the pipe never fills up.
        let reader = Thread {
            var signalled = false
            // read(2), not availableData: a child stopping (SIGSTOP in the cluster test) sends this
            // process SIGCHLD, and Foundation stops the process on the interrupted read.
            PipeReading.chunks(pipe.fileHandleForReading) { chunk in
                let text = log.text.withLock { $0 += String(decoding: chunk, as: UTF8.self); return $0 }
                if !signalled && text.contains("serving HTTP on http://127.0.0.1:") {
                    signalled = true
                    portFound.signal()
                }
            }
            if !signalled { portFound.signal() }
        }
        reader.start()
        portFound.wait()
        let text = log.text.withLock { $0 }
        guard let r = text.range(of: "serving HTTP on http://127.0.0.1:"), let port = Int(text[r.upperBound...].prefix { $0.isNumber }) else {
            process.terminate()
            throw RunningHubError(description: "no listening line in: \(text)")
        }
        base = "http://127.0.0.1:\(port)"
    }

    public var output: String { log.text.withLock { $0 } }

    /// SIGTERM, then the exit status.
    public func stop() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }

    public func terminate() {
        if process.isRunning { process.terminate() }
    }

    /// Polls `/metrics` until `condition` holds or 30 s passed (a bound for failure, not a wait for
    /// success: every poll is a real request). Returns the last metrics text.
    public func metrics(until condition: (String) -> Bool) async throws -> String {
        try await poll("/metrics") { condition($0.body) }.body
    }

    /// Polls `path` until `condition` holds or 30 s passed; returns the last answer.
    public func poll(_ path: String, until condition: (HTTPAnswer) -> Bool) async throws -> HTTPAnswer {
        let deadline = ContinuousClock.now + .seconds(30)
        var answer = try await get(base + path)
        while !condition(answer) && ContinuousClock.now < deadline {
            answer = try await get(base + path)
        }
        return answer
    }
}

public struct HTTPAnswer: Sendable {
    public var status: Int
    public var body: String
}

public func get(_ url: String) async throws -> HTTPAnswer {
    let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
    return HTTPAnswer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: String(decoding: data, as: UTF8.self))
}

public struct RunningHubError: Error, CustomStringConvertible {
    public var description: String
}

final class CollectedLog: Sendable {
    let text = Mutex("")
}
