import EnchufeCore
import Foundation
import Logging
import Testing
import TestSupport

@testable import EnchufeCore

@Suite struct ExecPluginTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Plugins/behaving.py").path
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func plugin(_ mode: String, timeout: Duration = .seconds(5), seen: URL? = nil) -> ExecPlugin {
        ExecPlugin(
            command: ["python3", Self.script, mode] + (seen.map { [$0.path] } ?? []), directory: URL(fileURLWithPath: "/"),
            kind: "transform", timeout: timeout, logger: Self.quiet)
    }

    func message(_ payload: JSONValue) -> Message { Message(payload: payload) }

    func pid(_ result: Result<[Message], any Error>) -> Int? { (try? result.get())?.first?.payload["pid"]?.intValue }

    @Test func messagesGoThroughTheProgramAndARefusalIsPermanent() async throws {
        let p = plugin("ok")
        let results = try await p.exchange([message(["n": 1]), message(["n": 2, "bad": true]), message(["n": 3])])
        #expect(try results[0].get().first?.payload["seen"] == true && results[0].get().first?.payload["n"] == 1)
        #expect(throws: PermanentError.self) { try results[1].get() }
        #expect(try results[2].get().count == 1)
        // The same program answers the next exchange.
        #expect(pid(try await p.exchange([message(["n": 4])])[0]) == pid(results[0]))
        await p.stop()
    }

    @Test(arguments: [
        ("crash", "ended with 1 message(s) unanswered: exited with status 3"),
        ("hang", "answered no message within"),
        ("garbage", "wrote a line that is not the protocol's JSON: this is not json"),
        ("noack", "answered no message within"),
    ])
    func aProgramThatMisbehavesIsStoppedAndStartedAgain(_ mode: String, _ reason: String) async throws {
        let p = plugin(mode, timeout: .seconds(2))
        // A program that never acknowledges fails at once; the others answer an ordinary message.
        let first = mode == "noack" ? nil : pid(try await p.exchange([message(["n": 1])])[0])
        if mode != "noack" { #expect(first != nil) }
        let failure = await #expect(throws: PluginRefusal.self) {
            _ = try await p.exchange([message(["n": 2, "crash": true, "hang": true, "garbage": true])])
        }
        #expect(failure?.description.contains(reason) == true, "\(String(describing: failure))")
        // Started again (after its backoff): a new process answers.
        if mode != "noack" {
            let again = pid(try await p.exchange([message(["n": 3])])[0])
            #expect(again != nil && again != first)
        }
        await p.stop()
    }

    @Test func aProgramOfAnotherProtocolOrKindIsRefusedAtItsHello() async throws {
        let old = plugin("old")
        let refusal = await #expect(throws: PluginRefusal.self) { _ = try await old.running() }
        #expect(refusal?.description.contains("speaks protocol 99; this hub speaks 1") == true)
        let missing = ExecPlugin(command: ["/nonexistent/plugin"], directory: URL(fileURLWithPath: "/"), kind: "sink", timeout: .seconds(1), logger: Self.quiet)
        let notStarted = await #expect(throws: PluginRefusal.self) { _ = try await missing.running() }
        #expect(notStarted?.description.contains("could not be started (/nonexistent/plugin)") == true)
    }

    /// Through a running flow: readings pushed in go through the program into the store; one it
    /// crashes on is retried (each time in a program started again) and ends as a dead letter; the
    /// webhook answers only once each is durable.
    @Test func inAFlowEveryMessageIsCommittedOrADeadLetterAfterTheProgramAnswered() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let (_, ingest) = try await APIKeys.create(tenant: "a", scopes: ["ingest"], name: "u", at: Date(), store: store)
        let seen = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-exec-\(UUID().uuidString).ndjson")
        defer { try? FileManager.default.removeItem(at: seen) }
        let flow = """
            flow: plugged
            tenant: a
            nodes:
              - id: hook
                type: webhook.in
                path: plugged
                format: json
                readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
                to: [plugin]
              - id: plugin
                type: exec.transform
                command: [python3, \(Self.script), crash, \(seen.path)]
                timeout: 5s
                retry: { attempts: 2, backoff: 10ms }
                to: [store]
              - { id: store, type: store.readings, flush_interval: 10ms }
            """
        let server = try await APIServer.start(store: store, flowYAML: [flow])
        defer { server.stop() }
        for hour in 0..<3 {
            let body = #"{"cups":"ES0031000000000001BJ0F","ts":"2026-06-22T0\#(hour):00:00Z","kwh":\#(hour).5}"#
            #expect(try await server.send("POST", "/hooks/plugged", key: ingest, json: body).status == 202)
        }
        let crash = #"{"cups":"ES0031000000000001BJ0F","ts":"2026-06-22T09:00:00Z","kwh":9,"crash":true}"#
        #expect(try await server.send("POST", "/hooks/plugged", key: ingest, json: crash).status == 202)
        let stored = try await store.readings(ReadingQuery(tenant: "a"))
        #expect(stored.map(\.reading.value) == [0.5, 1.5, 2.5])
        let letters = try await store.deadLetters(tenant: "a", limit: 5)
        #expect(letters.count == 1 && letters.first?.node == "plugin" && letters.first?.error.contains("exited with status 3") == true)
        // The crashing message reached the program once per attempt, each time a new one.
        let lines = try String(contentsOf: seen, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3 + 2, "\(lines)")
    }

    /// A sink program gets batches; one message it refuses is isolated (the others are written) and
    /// becomes a dead letter; the webhook answers only once each is written or dead-lettered.
    @Test func aSinkProgramGetsBatchesAndARefusedMessageIsIsolated() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let (_, ingest) = try await APIKeys.create(tenant: "a", scopes: ["ingest"], name: "u", at: Date(), store: store)
        let seen = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-exec-\(UUID().uuidString).ndjson")
        defer { try? FileManager.default.removeItem(at: seen) }
        let flow = """
            flow: erp
            tenant: a
            nodes:
              - { id: hook, type: webhook.in, path: erp, format: json, to: [erp] }
              - id: erp
                type: exec.sink
                command: [python3, \(Self.script), ok, \(seen.path)]
                batch_size: 10
                flush_interval: 10ms
                retry: { attempts: 1 }
            """
        let server = try await APIServer.start(store: store, flowYAML: [flow])
        defer { server.stop() }
        let answer = try await server.send("POST", "/hooks/erp", key: ingest, json: #"[{"n":1},{"n":2,"bad":true},{"n":3}]"#)
        #expect(answer.status == 202, "\(answer.body)")
        let received = try String(contentsOf: seen, encoding: .utf8).split(separator: "\n").compactMap { try? JSONValue.parse(String($0))["payload"]?["n"]?.intValue }
        // Each reached the program (a batch with a refusal is sent again one message at a time).
        #expect(Set(received) == [1, 2, 3], "\(received)")
        let letters = try await store.deadLetters(tenant: "a", limit: 5)
        #expect(letters.count == 1 && letters.first?.message["payload"]?["n"]?.intValue == 2 && letters.first?.error.contains("payload.bad is set") == true)
    }

    /// What a program writes waits in a buffer of fixed size: when it is full, the reader stops
    /// reading (so the program blocks on its pipe) until the flow takes a line.
    @Test func theLinesOfAProgramWaitInABoundedBuffer() async {
        let buffer = LineBuffer(capacity: 2)
        buffer.put("1")
        #expect(!buffer.isFull)
        buffer.put("2")
        #expect(buffer.isFull, "a third line would wait")
        guard case .line("1") = await buffer.take(until: nil) else { Issue.record("not the first line"); return }
        #expect(!buffer.isFull)
        buffer.put("3")
        #expect(buffer.isFull)
        buffer.abandon()
        buffer.put("dropped")  // once abandoned, never waits
        guard case .line("2") = await buffer.take(until: nil) else { Issue.record("not the second line"); return }
    }
}
