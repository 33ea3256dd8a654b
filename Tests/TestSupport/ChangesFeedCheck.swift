import EnchufeCore
import Foundation
import Hummingbird
import Logging
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A billing app's incremental pull, against any store: the hub's HTTP API serves `store` while a
/// writer inserts and revises readings; the app pulls `/api/v1/changes` in small pages with the
/// `next` it is given, until the writer is done and a page comes back empty. It must have seen
/// every change once, in sequence order, and end with exactly what the store holds.
public enum ChangesFeedCheck {
    public struct Outcome: Sendable {
        /// Every change pulled, in order: key → (value, revision, seq).
        public var pulled: [(key: String, value: Double, revision: Int, seq: Int64)]
        /// What the store holds at the end: key → (value, revision).
        public var stored: [String: (value: Double, revision: Int)]
        public var pages: Int
        public var pagesWhileWriting: Int
        public var rounds: Int

        /// What is wrong with the pull, if anything.
        public var problems: [String] {
            var problems: [String] = []
            let seqs = pulled.map(\.seq)
            if !zip(seqs, seqs.dropFirst()).allSatisfy({ $0 < $1 }) { problems.append("sequence numbers do not strictly increase: a change was seen twice or out of order") }
            var last: [String: (value: Double, revision: Int)] = [:]
            for c in pulled { last[c.key] = (c.value, c.revision) }
            if last.count != stored.count { problems.append("\(last.count) readings pulled, the store holds \(stored.count)") }
            for (key, s) in stored where last[key]?.value != s.value || last[key]?.revision != s.revision {
                problems.append("\(key): pulled \(String(describing: last[key])), stored \(s)")
            }
            if stored.count != rounds * 25 { problems.append("the store holds \(stored.count) readings, not \(rounds * 25)") }
            if !pulled.contains(where: { $0.revision > 1 }) { problems.append("no revision was pulled") }
            if pagesWhileWriting < 2 { problems.append("only \(pagesWhileWriting) pages were pulled while readings were being written") }
            return problems
        }
    }

    public static func run(store: any Store, rounds: Int = 40, pageSize: Int = 37) async throws -> Outcome {
        let (_, key) = try await APIKeys.create(tenant: "billing", scopes: ["read"], name: "app", at: Date(), store: store)
        let server = try await APIServer.start(store: store)
        defer { server.stop() }

        // The writer: each round 25 new hours of one of 5 supplies, and revisions of 10 stored ones.
        let t0 = Date(timeIntervalSince1970: 1_774_742_400)
        let finished = Mutex(false)
        let writing = Task {
            defer { finished.withLock { $0 = true } }
            var random = UInt64(42)
            func next(_ n: Int) -> Int {
                random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int((random >> 33) % UInt64(n))
            }
            var written = 0
            for round in 0..<rounds {
                var batch: [Reading] = []
                for i in 0..<25 {
                    let n = written + i
                    batch.append(Reading(tenant: "billing", series: "ES00310000000000\(n % 5)0BJ0F", quantity: "consumption",
                                         ts: t0.addingTimeInterval(Double(n / 5) * 3600), resolution: "PT1H", value: Double(n), unit: "kWh"))
                }
                written += 25
                for _ in 0..<10 {
                    let n = next(written)
                    batch.append(Reading(tenant: "billing", series: "ES00310000000000\(n % 5)0BJ0F", quantity: "consumption",
                                         ts: t0.addingTimeInterval(Double(n / 5) * 3600), resolution: "PT1H", value: Double(n) + Double(round + 1) / 100, unit: "kWh"))
                }
                _ = try await store.upsert(batch)
                // Another tenant's readings never show in this tenant's feed.
                _ = try await store.upsert([Reading(tenant: "other", series: "X", quantity: "consumption", ts: t0.addingTimeInterval(Double(round) * 3600), resolution: "PT1H", value: 1, unit: "kWh")])
                await Task.yield()
            }
        }

        var pulled: [(key: String, value: Double, revision: Int, seq: Int64)] = []
        var after: Int64 = 0
        var pages = 0
        var pagesWhileWriting = 0
        while true {
            // Read before the request: an empty page after the writer finished is the end.
            let writerFinished = finished.withLock { $0 }
            let answer = try await server.get("/api/v1/changes?after=\(after)&limit=\(pageSize)", key: key)
            guard answer.status == 200 else { throw Failure("changes answered \(answer.status): \(answer.body)") }
            let body = try JSONValue.parse(answer.body)
            let changes = body["changes"]?.arrayValue ?? []
            pages += 1
            if !writerFinished { pagesWhileWriting += 1 }
            for c in changes {
                pulled.append(("\(c["series"]?.stringValue ?? "") \(c["ts"]?.stringValue ?? "")", c["value"]?.doubleValue ?? .nan, c["revision"]?.intValue ?? 0, Int64(c["seq"]?.intValue ?? 0)))
            }
            guard let next = body["next"]?.intValue else { throw Failure("no next in \(body.jsonText())") }
            after = Int64(next)
            if changes.isEmpty && writerFinished { break }
        }
        try await writing.value
        var stored: [String: (value: Double, revision: Int)] = [:]
        for s in try await store.readings(ReadingQuery(tenant: "billing")) {
            stored["\(s.reading.series) \(ISO8601.string(s.reading.ts))"] = (s.reading.value, s.revision)
        }
        return Outcome(pulled: pulled, stored: stored, pages: pages, pagesWhileWriting: pagesWhileWriting, rounds: rounds)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}

/// The hub's HTTP API on a loopback port, serving a store (no flows).
public struct APIServer: Sendable {
    public let port: Int
    public let hub: Hub
    let task: Task<Void, any Error>
    let flows: Task<Void, Never>

    /// The hub's HTTP server on a free port of `host` (loopback by default), running the flows of
    /// `flowYAML` (each a flow file's text) on `store`; returns once their exports and webhooks are served.
    /// With `load`, the hub reloads its flows from it (`POST /api/v1/flows/reload`).
    public static func start(
        store: any Store, flowYAML: [String] = [], host: String = "127.0.0.1", load: (@Sendable () throws -> FlowSet)? = nil,
        requireKeys: Bool = false, limits: ConnectionLimits = ConnectionLimits(), tapWatchers: TapWatchers = TapWatchers()
    ) async throws -> APIServer {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let registry = NodeRegistry(CoreNodes.specs)
        var definitions: [FlowDefinition] = []
        for (i, text) in flowYAML.enumerated() {
            let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: text, file: "flow\(i).yaml")
            guard let flow, diagnostics.isEmpty else { throw CommandError(command: "load flow\(i).yaml", result: CommandResult(status: 1, output: "\(diagnostics)")) }
            definitions.append(flow)
        }
        var environment = EngineEnvironment(store: store, logger: logger)
        environment.tapWatchers = tapWatchers
        let hub = Hub(flows: definitions, registry: registry, environment: environment, load: load)
        let ports = AsyncStream.makeStream(of: Int.self)
        let app = HTTPServer.application(hub: hub, host: host, port: 0, logger: logger, requireKeys: requireKeys, limits: limits) { ports.continuation.yield($0) }
        let task = Task { try await app.runService() }
        let flows = Task { _ = try? await hub.run() }
        var port = 0
        for await p in ports.stream { port = p; break }
        // The export nodes register their names when their flow starts.
        let names = definitions.flatMap(\.nodes).filter { $0.type == "export" }.compactMap { $0.options.string("name") }
        let deadline = ContinuousClock.now + .seconds(10)
        let hooks = definitions.flatMap(\.nodes).filter { $0.type == "webhook.in" }.compactMap { $0.options.string("path") }
        while (names.contains(where: { hub.environment.exports.export($0) == nil }) || hooks.contains(where: { hub.environment.webhooks.endpoint($0) == nil }))
            && ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(5))
        }
        return APIServer(port: port, hub: hub, task: task, flows: flows)
    }

    public func stop() {
        hub.stop()
        task.cancel()
    }

    /// `GET path` with a key: status, content type, body and headers.
    public func get(_ path: String, key: String?) async throws -> (status: Int, type: String, body: String, headers: [String: String]) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var headers: [String: String] = [:]
        for (name, value) in http?.allHeaderFields ?? [:] { headers[String(describing: name).lowercased()] = String(describing: value) }
        return (http?.statusCode ?? 0, http?.value(forHTTPHeaderField: "Content-Type") ?? "", String(decoding: data, as: UTF8.self), headers)
    }

    /// `PUT path` with a JSON body and a key: status and body.
    public func put(_ path: String, key: String?, json: String) async throws -> (status: Int, body: String) {
        try await send("PUT", path, key: key, json: json)
    }

    /// A request with an optional JSON body and key: status and body.
    public func send(_ method: String, _ path: String, key: String?, json: String? = nil) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
