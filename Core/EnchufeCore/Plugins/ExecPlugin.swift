import Foundation
import Logging

/// A message the plugin refused (`{"type":"error"}`): retried per the node's policy unless the
/// plugin said `"retry": false`.
struct PluginRefusal: Error, CustomStringConvertible {
    var description: String
}

/// A plugin program that speaks the exec protocol (version 1, docs/plugins.md):
/// started on first use, and after it died, hung or wrote something that is not the protocol,
/// started again with backoff (1 s, doubling, at most a minute; back to 1 s once it answers).
actor ExecPlugin {
    static let protocolVersion = 1

    let command: [String]
    let directory: URL
    let kind: String
    let timeout: Duration
    let logger: Logger
    private var process: PluginProcess?
    private var failures = 0
    private var notBefore = ContinuousClock.now
    private var nextID: UInt64 = 0

    init(command: [String], directory: URL, kind: String, timeout: Duration, logger: Logger) {
        self.command = command
        self.directory = directory
        self.kind = kind
        self.timeout = timeout
        self.logger = logger
    }

    /// The running program, started (after the backoff, if it failed before) and greeted.
    func running() async throws -> PluginProcess {
        if let process, process.isRunning { return process }
        process = nil
        if notBefore > .now { try await Task.sleep(until: notBefore) }
        let started: PluginProcess
        do {
            started = try PluginProcess(command: command, directory: directory, logger: logger)
        } catch {
            throw failed(nil, "could not be started (\(command.joined(separator: " "))): \(error)")
        }
        // Starting (an interpreter loading, a busy machine) may take longer than answering a message.
        let helloTimeout = max(timeout, .seconds(10))
        switch await started.nextLine(until: .now + helloTimeout) {
        case .line(let text):
            guard let hello = try? JSONValue.parse(text), hello["type"]?.stringValue == "hello" else {
                throw failed(started, "did not begin with its hello line ({\"type\":\"hello\",\"protocol\":1}): \(text.prefix(200))")
            }
            guard hello["protocol"]?.intValue == Self.protocolVersion else {
                throw failed(started, "speaks protocol \(hello["protocol"]?.jsonText() ?? "?"); this hub speaks \(Self.protocolVersion)")
            }
            if let declared = hello["kind"]?.stringValue, declared != kind {
                throw failed(started, "says it is a \(declared), but runs as exec.\(kind)")
            }
            logger.info("plugin started (pid \(started.process.processIdentifier))\(hello["name"]?.stringValue.map { ": \($0)" } ?? "")")
        case .end:
            _ = await started.waitForExit()
            throw failed(started, "ended before its hello line: \(started.ending)")
        case .timedOut:
            throw failed(started, "sent no hello line within \(DurationText.format(helloTimeout))")
        }
        process = started
        return started
    }

    /// Stops `process` and sets the backoff; the error to throw.
    private func failed(_ failing: PluginProcess?, _ reason: String) -> PluginRefusal {
        failing?.stop()
        if process === failing { process = nil }
        failures += 1
        let wait = Duration.seconds(min(60, 1 << min(failures - 1, 6)))
        notBefore = .now + wait
        logger.error("plugin \(reason); starting it again in \(DurationText.format(wait))")
        return PluginRefusal(description: "plugin \(reason)")
    }

    /// Sends `messages`, then reads until each is acknowledged (with what it emitted) or refused.
    /// Each must be answered within `timeout` of the previous answer. A program that ends, hangs or
    /// writes garbage meanwhile is stopped, and the whole exchange throws.
    func exchange(_ messages: [Message]) async throws -> [Result<[Message], any Error>] {
        let p = try await running()
        let ids = messages.map { _ in
            nextID += 1
            return String(nextID)
        }
        return try await withTaskCancellationHandler {
            for (id, message) in zip(ids, messages) {
                do {
                    try await p.send(["type": "message", "id": .string(id), "message": message.json])
                } catch {
                    _ = await p.waitForExit()
                    throw failed(p, "does not read its input: \(p.ending)")
                }
            }
            var pending = Set(ids)
            var emitted: [String: [Message]] = [:]
            var results: [String: Result<[Message], any Error>] = [:]
            var deadline = ContinuousClock.now + timeout
            while !pending.isEmpty {
                switch await p.nextLine(until: deadline) {
                case .end:
                    _ = await p.waitForExit()
                    throw failed(p, "ended with \(pending.count) message(s) unanswered: \(p.ending)")
                case .timedOut:
                    throw failed(p, "answered no message within \(DurationText.format(timeout)) (\(pending.count) waiting)")
                case .line(let text):
                    guard let json = try? JSONValue.parse(text), let type = json["type"]?.stringValue else {
                        throw failed(p, "wrote a line that is not the protocol's JSON: \(text.prefix(200))")
                    }
                    if type == "log" {
                        log(json)
                        continue
                    }
                    guard let id = json["id"]?.stringValue, pending.contains(id) else {
                        throw failed(p, "wrote '\(type)' for id \(json["id"]?.jsonText() ?? "none"), which is not waiting for an answer")
                    }
                    switch type {
                    case "emit":
                        emitted[id, default: []].append(Message(json: json["message"] ?? .null))
                    case "ack":
                        results[id] = .success(emitted[id] ?? [])
                        pending.remove(id)
                        deadline = .now + timeout
                    case "error":
                        let reason = json["error"]?.stringValue ?? "refused"
                        results[id] = .failure(json["retry"]?.boolValue == false ? PermanentError("plugin: \(reason)") : PluginRefusal(description: "plugin: \(reason)"))
                        pending.remove(id)
                        deadline = .now + timeout
                    default:
                        throw failed(p, "wrote an unknown line type '\(type)'")
                    }
                }
            }
            failures = 0
            return ids.map { results[$0]! }
        } onCancel: {
            p.stop()
        }
    }

    /// A source: the program's `emit` lines go into the flow (waiting while it is full: the program
    /// then blocks on its pipe), and each is answered `ack` once what derives from it is committed
    /// (`nack` with the reason otherwise). Returns when the program exits with status 0 and
    /// `restartAlways` is false.
    func runSource(_ context: SourceContext, restartAlways: Bool) async throws {
        while !Task.isCancelled {
            let p = try await running()
            let ended: Bool = try await withTaskCancellationHandler {
                while true {
                    switch await p.nextLine() {
                    case .end, .timedOut:
                        if await p.waitForExit(), !restartAlways {
                            logger.info("plugin finished (status 0)")
                            process = nil
                            return true
                        }
                        _ = failed(p, "ended: \(p.ending)")
                        return false
                    case .line(let text):
                        guard let json = try? JSONValue.parse(text), let type = json["type"]?.stringValue else {
                            _ = failed(p, "wrote a line that is not the protocol's JSON: \(text.prefix(200))")
                            return false
                        }
                        switch type {
                        case "log": log(json)
                        case "emit":
                            let id = json["id"] ?? .null
                            let delivery = try await context.emit(Message(json: json["message"] ?? .null))
                            failures = 0
                            delivery.onSettled { outcome in
                                let answer: JSONValue = switch outcome {
                                case .committed: ["type": "ack", "id": id]
                                case .failed(let reason): ["type": "nack", "id": id, "error": .string(reason)]
                                }
                                Task { try? await p.send(answer) }
                            }
                        default:
                            _ = failed(p, "wrote an unknown line type '\(type)'")
                            return false
                        }
                    }
                }
            } onCancel: {
                p.stop()
            }
            if ended { return }
        }
    }

    func stop() {
        process?.stop()
        process = nil
    }

    private func log(_ json: JSONValue) {
        let text = json["message"]?.stringValue ?? json.jsonText()
        switch json["level"]?.stringValue {
        case "error": logger.error("plugin: \(text)")
        case "warning": logger.warning("plugin: \(text)")
        case "debug": logger.debug("plugin: \(text)")
        default: logger.info("plugin: \(text)")
        }
    }
}
