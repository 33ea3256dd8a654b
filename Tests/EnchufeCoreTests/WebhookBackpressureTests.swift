@testable import EnchufeCore
import Foundation
import Hummingbird
import Logging
import Synchronization
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A sink that holds every batch until the test lets it go: the flow behind a webhook stops moving.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>], entered: Int)>((false, [], 0))

    var entered: Int { state.withLock { $0.entered } }

    func pass() async {
        await withCheckedContinuation { c in
            let open = state.withLock { s -> Bool in
                s.entered += 1
                if !s.open { s.waiters.append(c) }
                return s.open
            }
            if open { c.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    var spec: NodeSpec {
        NodeSpec(type: "test.gate", kind: .sink, summary: "holds batches until opened", options: [], example: "", make: { _ in .sink(Sink(gate: self)) })
    }

    struct Sink: SinkNode {
        let gate: Gate
        var batching: Batching { .single }
        func write(_ batch: [Message], _ context: NodeContext) async throws { await gate.pass() }
    }
}

@Suite struct WebhookBackpressureTests {
    static func post(_ url: String, _ body: String) async throws -> (Int, String?) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (_, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        return (http?.statusCode ?? 0, http?.value(forHTTPHeaderField: "Retry-After"))
    }

    /// A hub serving `POST /hooks/busy` into a gate whose queue holds one message, with the first
    /// request held by the gate and the second filling the queue: the flow has no room.
    struct FullFlow {
        let gate = Gate()
        let hub: Hub
        let url: String
        let server: Task<Void, any Error>
        let flows: Task<Void, Never>

        init(wait: String) async throws {
            let registry = NodeRegistry(CoreNodes.specs + [gate.spec])
            let yaml = """
                flow: hooks
                nodes:
                  - { id: hook, type: webhook.in, path: busy, auth: none, wait: \(wait), to: [gate] }
                  - { id: gate, type: test.gate, queue_size: 1 }
                """
            let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "hooks.yaml")
            #expect(diagnostics.isEmpty, "\(diagnostics)")
            let store = try SQLiteStore(url: "sqlite::memory:")
            try await store.migrate()
            let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            let hub = Hub(flows: [try #require(flow)], registry: registry, environment: EngineEnvironment(store: store, logger: logger))
            self.hub = hub
            let ports = AsyncStream.makeStream(of: Int.self)
            let app = HTTPServer.application(hub: hub, host: "127.0.0.1", port: 0, logger: logger) { port in ports.continuation.yield(port) }
            server = Task { try await app.runService() }
            flows = Task { await hub.runFlows() }
            var port = 0
            for await p in ports.stream {
                port = p
                break
            }
            url = "http://127.0.0.1:\(port)/hooks/busy"
            // Wait for the webhook to be served (the flow registers it as it starts).
            while hub.environment.webhooks.endpoint("busy") == nil { await Task.yield() }
        }

        /// Posts the first two requests (held by the gate, in its queue) and returns them once the
        /// flow has no room left.
        func fill() async throws -> [Task<(Int, String?), any Error>] {
            let first = Task { [url] in try await WebhookBackpressureTests.post(url, #"{"n": 1}"#) }
            while gate.entered < 1 { await Task.yield() }
            let second = Task { [url] in try await WebhookBackpressureTests.post(url, #"{"n": 2}"#) }
            while hub.environment.webhooks.endpoint("busy")!.room() > 0 { await Task.yield() }
            return [first, second]
        }

        func stop() async {
            hub.stop()
            await flows.value
            server.cancel()
        }
    }

    @Test func aFullFlowAnswers429WithRetryAfterAndTakesNothing() async throws {
        let flow = try await FullFlow(wait: "200ms")
        let held = try await flow.fill()

        let (status, retryAfter) = try await Self.post(flow.url, #"{"n": 3}"#)
        #expect(status == 429 && retryAfter == "1", "the flow has no room: refused, not queued")

        flow.gate.open()
        for request in held { #expect(try await request.value.0 == 202) }
        #expect(flow.gate.entered == 2, "the refused request was not taken")
        await flow.stop()
    }

    @Test func aRequestWaitingForRoomIsTakenAsSoonAsTheFlowMakesRoom() async throws {
        // A minute's wait: a request that is not woken when room is made would be refused after it.
        let flow = try await FullFlow(wait: "60s")
        let held = try await flow.fill()

        let third = Task { try await Self.post(flow.url, #"{"n": 3}"#) }
        let endpoint = try #require(flow.hub.environment.webhooks.endpoint("busy"))
        #expect(endpoint.room() == 0, "still full: the third request waits")
        flow.gate.open()
        for request in held + [third] { #expect(try await request.value.0 == 202) }
        #expect(flow.gate.entered == 3, "the waiting request was taken")
        await flow.stop()
    }
}

@Suite struct WebhookPathTests {
    @Test func twoNodesServingOnePathAreAValidationErrorWithItsPosition() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "flow: a\nnodes:\n  - { id: h, type: webhook.in, path: x, to: [s] }\n  - { id: s, type: store.readings }\n"
            .write(to: dir.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try "flow: b\nnodes:\n  - id: h\n    type: webhook.in\n    path: x\n    to: [s]\n  - { id: s, type: store.readings }\n"
            .write(to: dir.appendingPathComponent("b.yaml"), atomically: true, encoding: .utf8)
        let set = try FlowLoader(registry: NodeRegistry(CoreNodes.specs), environment: [:]).load(paths: [dir.path])
        #expect(set.flows.map(\.id) == ["a"])
        let messages = set.diagnostics.map(\.description)
        #expect(messages.count == 1 && messages[0].contains("b.yaml:5:11") && messages[0].contains("'x' is already served"), "\(messages)")
    }
}

@Suite struct DropFolderTests {
    @Test func onlyCompleteMatchingFilesAreCandidatesAndAGrowingFileIsNotStable() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("drop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("done"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["a.csv", "b.json", ".hidden.csv", "c.csv.part", "d.csv.tmp", "e.txt"] {
            try Data("x".utf8).write(to: dir.appendingPathComponent(name))
        }
        #expect(try FileInNode.candidates(in: dir, pattern: "*.csv") == ["a.csv"])
        #expect(try FileInNode.candidates(in: dir, pattern: "*") == ["a.csv", "b.json", "e.txt"], "never hidden, partial or folders")

        let file = dir.appendingPathComponent("a.csv")
        let before = try #require(FileState(file))
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("more".utf8))
        try handle.close()
        #expect(FileState(file) != before, "a file still being written is not read: it changed since the last look")
        #expect(FileInNode.contentType("x.jsonl") == "application/x-ndjson" && FileInNode.contentType("F5D_0031.0") == "text/csv")
    }
}

@Suite struct WebhookAuthNoneTests {
    /// `auth: none` is served only when the hub listens on loopback: on 0.0.0.0 it is refused.
    @Test func authNoneIsRefusedWhenTheHubListensBeyondLoopback() async throws {
        let registry = NodeRegistry(CoreNodes.specs)
        let yaml = "flow: open\nnodes:\n  - { id: hook, type: webhook.in, path: open, auth: none, to: [log] }\n  - { id: log, type: log }\n"
        let (flow, _) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "open.yaml")
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let hub = Hub(flows: [try #require(flow)], registry: registry, environment: EngineEnvironment(store: store, logger: logger))
        let ports = AsyncStream.makeStream(of: Int.self)
        let app = HTTPServer.application(hub: hub, host: "0.0.0.0", port: 0, logger: logger) { ports.continuation.yield($0) }
        let server = Task { try await app.runService() }
        let flows = Task { await hub.runFlows() }
        var port = 0
        for await p in ports.stream {
            port = p
            break
        }
        while hub.environment.webhooks.endpoint("open") == nil { await Task.yield() }
        let (status, _) = try await WebhookBackpressureTests.post("http://127.0.0.1:\(port)/hooks/open", #"{"n": 1}"#)
        #expect(status == 403)
        hub.stop()
        await flows.value
        server.cancel()
    }
}
