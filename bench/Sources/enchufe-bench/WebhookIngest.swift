import EnchufeCore
import Foundation
import GRDBSQLite
import Hummingbird
import Logging
import TestSupport

/// `webhook-ingest`: 500-reading JSON batches POSTed with an API key by `wrk` to `webhook.in` →
/// `store.readings` (SQLite, every 202 durable), against, in the same run, two peers:
/// - the same rows inserted into the same table (same schema, index and settings: WAL,
///   `synchronous = FULL`) with SQLite's C API, one prepared statement, a transaction per 5,000
///   rows (the hub's `batch_size`): what SQLite can take;
/// - a bare Hummingbird route that decodes the same body with `JSONDecoder` into Codable structs,
///   the fast way a Swift developer would, against one that parses it with the hub's JSON reader
///   (`JSONReader`, into `JSONValue`, as `webhook.in` does): the hub's parsing against the usual one.
/// Every request's readings are distinct (wrk's script numbers the series), and the store is
/// checked to hold them all.
func webhookIngestBenchmark(seconds: Int) async throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
        print("wrk is not installed (apt-get install wrk)")
        exit(2)
    }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-webhook-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
    let connections = Int(ProcessInfo.processInfo.environment["ENCHUFE_BENCH_CONNECTIONS"] ?? "") ?? 32

    // The hub: webhook.in → store.readings on a SQLite file.
    let store = try SQLiteStore(path: dir.appendingPathComponent("bench.sqlite").path)
    try await store.migrate()
    let (_, key) = try await APIKeys.create(tenant: "default", scopes: ["ingest"], name: "bench", at: Date(), store: store)
    let registry = NodeRegistry(CoreNodes.specs)
    let yaml = """
        flow: bench
        nodes:
          - id: hook
            type: webhook.in
            path: bench
            readings: { series: "{payload.s}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
            to: [store]
          - { id: store, type: store.readings, batch_size: 5000, flush_interval: 5ms, queue_size: 20000 }
        """
    let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "bench.yaml")
    guard let flow, diagnostics.isEmpty else { throw BenchError("the flow does not load: \(diagnostics)") }
    let hub = Hub(flows: [flow], registry: registry, environment: EngineEnvironment(store: store, logger: logger))
    let hubPorts = AsyncStream.makeStream(of: Int.self)
    let hubApp = HTTPServer.application(hub: hub, host: "127.0.0.1", port: 0, logger: logger) { hubPorts.continuation.yield($0) }
    let hubServer = Task { try await hubApp.runService() }
    let flows = Task { await hub.runFlows() }
    var hubPort = 0
    for await p in hubPorts.stream { hubPort = p; break }
    while hub.environment.webhooks.endpoint("bench") == nil { try await Task.sleep(for: .milliseconds(10)) }

    // The parsing peers: the same body read and parsed, then discarded; by the hub's reader, and
    // by JSONDecoder into Codable structs.
    let router = Router()
    router.post("/bare") { request, _ -> Response in
        let body = try await request.body.collect(upTo: 10 << 20)
        _ = try body.withUnsafeReadableBytes { try JSONReader.parse($0) }
        return Response(status: .accepted)
    }
    struct Element: Decodable {
        var s: String
        var ts: String
        var kwh: Double
    }
    router.post("/codable") { request, _ -> Response in
        let body = try await request.body.collect(upTo: 10 << 20)
        _ = try JSONDecoder().decode([Element].self, from: body)
        return Response(status: .accepted)
    }
    let barePorts = AsyncStream.makeStream(of: Int.self)
    let bareApp = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { barePorts.continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
    let bareServer = Task { try await bareApp.runService() }
    var barePort = 0
    for await p in barePorts.stream { barePort = p; break }

    // wrk: each request a 500-element array; @N@ is the request's number, so its readings are new.
    let element = #"{"s": "bench-@N@", "ts": "2025-06-01T%02d:%02d:00Z", "kwh": 0.%03d}"#
    var elements: [String] = []
    for i in 0..<500 {
        let hour: Int = (i / 4) % 24
        let minute: Int = (i % 4) * 15
        let day: Int = i / 96
        elements.append(String(format: element, hour, minute, i).replacingOccurrences(of: "2025-06-01", with: String(format: "2025-06-%02d", 1 + day)))
    }
    let body = "[" + elements.joined(separator: ",") + "]"
    let script = dir.appendingPathComponent("post.lua")
    try """
        local body = [=[\(body)]=]
        local n = 0
        local thread_id = 0
        local run = "r"
        setup = function(thread) thread_id = thread_id + 1; thread:set("tid", thread_id) end
        init = function(args) run = args[1] or "r" end
        request = function()
          n = n + 1
          local b = string.gsub(body, "@N@", run .. "-" .. tid .. "-" .. n)
          return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer \(key)"}, b)
        end
        local shown = false
        response = function(status, headers, body)
          if status >= 300 and not shown then
            shown = true
            print("first refused answer: " .. status .. " " .. string.sub(body, 1, 300))
          end
        end
        """.write(to: script, atomically: true, encoding: .utf8)

    var run = 0
    func wrk(_ url: String) throws -> (requestsPerSecond: Double, requests: Int, non2xx: Int) {
        run += 1
        let result = try Commands.run("/usr/bin/wrk", ["-t2", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script.path, url, "--", "run\(run)"])
        let lines = result.output.split(separator: "\n").map(String.init)
        let rps = lines.first { $0.hasPrefix("Requests/sec:") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        let total = lines.first { $0.contains("requests in") }.flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? 0
        let non2xx = lines.first { $0.contains("Non-2xx") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        if ProcessInfo.processInfo.environment["ENCHUFE_BENCH_VERBOSE"] != nil { print(result.output) }
        for line in lines where line.hasPrefix("first refused answer") { print("  " + line) }
        return (rps, total, non2xx)
    }

    // Rounds alternate (peer, hub, peer, hub...); the best of each side counts (this machine's runs vary).
    let rounds = Int(ProcessInfo.processInfo.environment["ENCHUFE_BENCH_ROUNDS"] ?? "") ?? 3
    var bare = (requestsPerSecond: 0.0, requests: 0, non2xx: 0)
    var codable = bare
    var hook = bare
    var acceptedAll = 0
    // ENCHUFE_BENCH_ONLY=hub or =peer runs one side (to profile it); no ratio is printed then.
    let only = ProcessInfo.processInfo.environment["ENCHUFE_BENCH_ONLY"]
    for _ in 0..<rounds {
        if only != "hub" {
            let b = try wrk("http://127.0.0.1:\(barePort)/bare")
            if b.requestsPerSecond > bare.requestsPerSecond || b.non2xx > 0 { bare = b }
            let c = try wrk("http://127.0.0.1:\(barePort)/codable")
            if c.requestsPerSecond > codable.requestsPerSecond || c.non2xx > 0 { codable = c }
        }
        if only != "peer" {
            let h = try wrk("http://127.0.0.1:\(hubPort)/hooks/bench")
            if h.requestsPerSecond > hook.requestsPerSecond || h.non2xx > 0 { hook = h }
            acceptedAll += h.requests - h.non2xx
        }
    }
    let accepted = acceptedAll
    guard bare.non2xx == 0, codable.non2xx == 0, hook.non2xx == 0, accepted > 0 || only == "peer" else {
        throw BenchError("requests were refused (bare: \(bare.non2xx) of \(bare.requests), webhook: \(hook.non2xx) of \(hook.requests)); run with ENCHUFE_BENCH_VERBOSE=1")
    }
    let changes = try await store.changes(tenant: "default", after: 0, limit: Int.max)
    let stored = changes.count
    hub.stop()
    await flows.value
    hubServer.cancel()
    bareServer.cancel()

    let hookReadings = hook.requestsPerSecond * 500
    let bareReadings = bare.requestsPerSecond * 500
    let codableReadings = codable.requestsPerSecond * 500
    // The rows the hub stored, inserted again by SQLite's C API into a fresh copy of its table.
    let raw = only == nil ? try await rawSQLiteInserts(changes.map(\.reading), in: dir) : 0
    print("webhook-ingest: 500-reading JSON batches, wrk -t2 -c\(connections) -d\(seconds)s, SQLite store, best of \(rounds) alternating rounds")
    print(String(format: "  webhook.in → store.readings: %.0f readings/s accepted and durable (%d requests, %d not 2xx)", hookReadings, hook.requests, hook.non2xx))
    if only == nil {
        print(String(format: "  peer, the same %d rows by SQLite's C API (prepared INSERT, a transaction per 5,000): %.0f rows/s", stored, raw))
        print(String(format: "  ratio webhook.in → store / raw SQLite: %.2f", hookReadings / max(raw, 1)))
    }
    print(String(format: "  the hub's JSON reader, bare route: %.0f readings/s (%d requests, %d not 2xx)", bareReadings, bare.requests, bare.non2xx))
    print(String(format: "  peer, JSONDecoder into Codable structs, bare route: %.0f readings/s (%d requests, %d not 2xx)", codableReadings, codable.requests, codable.non2xx))
    if only != "hub" { print(String(format: "  ratio hub's JSON reader / JSONDecoder: %.2f", bareReadings / max(codableReadings, 1))) }
    guard stored >= accepted * 500 else { throw BenchError("the store holds \(stored) readings, but \(accepted) requests × 500 were accepted") }
    print("  check: the store holds \(stored) readings for \(accepted) accepted requests")
}

/// Rows per second inserting `readings` as the hub stores them (all twelve columns) into a fresh
/// store's `readings` table (same schema, primary key and index; WAL, `synchronous = FULL`) with
/// SQLite's C API: one prepared statement, bound with SQLite's calls, a transaction per 5,000 rows.
func rawSQLiteInserts(_ readings: [Reading], in dir: URL) async throws -> Double {
    let path = dir.appendingPathComponent("raw.sqlite").path
    do {
        let schema = try SQLiteStore(path: path)
        try await schema.migrate()
    }
    var db: OpaquePointer?
    guard sqlite3_open(path, &db) == SQLITE_OK, let db else { throw BenchError("cannot open \(path)") }
    defer { sqlite3_close(db) }
    func exec(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw BenchError("\(sql): \(String(cString: sqlite3_errmsg(db)))") }
    }
    try exec("PRAGMA journal_mode = WAL")
    try exec("PRAGMA synchronous = FULL")
    var statement: OpaquePointer?
    let sql = "INSERT INTO readings (tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11)"
    guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else { throw BenchError("prepare: \(String(cString: sqlite3_errmsg(db)))") }
    defer { sqlite3_finalize(statement) }
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let started = ContinuousClock.now
    for batchStart in stride(from: 0, to: readings.count, by: 5000) {
        try exec("BEGIN")
        for (i, r) in readings[batchStart..<min(readings.count, batchStart + 5000)].enumerated() {
            sqlite3_bind_text(statement, 1, r.tenant, -1, transient)
            sqlite3_bind_text(statement, 2, r.series, -1, transient)
            sqlite3_bind_text(statement, 3, r.quantity, -1, transient)
            sqlite3_bind_int64(statement, 4, Int64((r.ts.timeIntervalSince1970 * 1000).rounded()))
            sqlite3_bind_text(statement, 5, r.resolution, -1, transient)
            sqlite3_bind_double(statement, 6, r.value)
            sqlite3_bind_text(statement, 7, r.unit, -1, transient)
            sqlite3_bind_text(statement, 8, r.quality.rawValue, -1, transient)
            sqlite3_bind_text(statement, 9, r.source, -1, transient)
            sqlite3_bind_int64(statement, 10, Int64(batchStart + i + 1))
            sqlite3_bind_int64(statement, 11, now)
            guard sqlite3_step(statement) == SQLITE_DONE else { throw BenchError("insert: \(String(cString: sqlite3_errmsg(db)))") }
            sqlite3_reset(statement)
        }
        try exec("COMMIT")
    }
    let seconds = (ContinuousClock.now - started).seconds
    var count: OpaquePointer?
    sqlite3_prepare_v2(db, "SELECT count(*) FROM readings", -1, &count, nil)
    defer { sqlite3_finalize(count) }
    guard sqlite3_step(count) == SQLITE_ROW, Int(sqlite3_column_int64(count, 0)) == readings.count else { throw BenchError("the raw inserts did not store every row") }
    return Double(readings.count) / seconds
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The `enchufe` executable built beside this one (`swift build -c release --product enchufe`).
func releasedEnchufe() throws -> URL {
    let enchufe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("enchufe")
    guard FileManager.default.isExecutableFile(atPath: enchufe.path) else { throw BenchError("\(enchufe.path) is not built (swift build -c release --product enchufe)") }
    return enchufe
}
