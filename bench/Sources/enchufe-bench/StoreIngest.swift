// store-ingest: readings/s stored through `store.readings` into PostgreSQL (COPY into a staging table
// and one set-based upsert per batch), against `psql \copy` of the same rows into an identical table.
import EnchufeCore
import Foundation
import Logging
import Postgres
import Simulator
import TestSupport

/// Sends prepared messages as fast as the flow takes them.
struct PreparedSource: SourceNode {
    let messages: [Message]
    func run(_ context: SourceContext) async throws {
        for message in messages { try await context.emit(message) }
    }
}

/// `readings` simulated readings of a 100-household community, one message per 15-minute interval
/// (as `simulate.community` sends them), the last one cut so that the total is exact.
func simulatedMessages(readings total: Int) -> [Message] {
    let model = CommunityModel(seed: 7, households: 100, latitude: 40.4)
    var soc: [Double] = []
    var messages: [Message] = []
    var count = 0
    var start = Date(timeIntervalSince1970: 1_735_689_600)  // 2025-01-01T00:00:00Z
    while count < total {
        let intervals = model.step(start: start, seconds: 900, soc: &soc)
        var readings: [Reading] = []
        for (h, e) in zip(model.households, intervals) {
            readings.append(Reading(tenant: "bench", series: h.cups, quantity: "consumption", ts: start, resolution: "PT15M", value: e.importKWh, unit: "kWh", source: "bench/sim"))
            if h.pvKWp > 0 {
                readings.append(Reading(tenant: "bench", series: h.cups, quantity: "surplus", ts: start, resolution: "PT15M", value: e.exportKWh, unit: "kWh", source: "bench/sim"))
                readings.append(Reading(tenant: "bench", series: h.cups, quantity: "generation", ts: start, resolution: "PT15M", value: e.generationKWh, unit: "kWh", source: "bench/sim"))
            }
            if let s = e.socPercent {
                readings.append(Reading(tenant: "bench", series: h.cups, quantity: "soc", ts: start.addingTimeInterval(900), resolution: "PT0S", value: s, unit: "%", source: "bench/sim"))
            }
        }
        if count + readings.count > total { readings.removeLast(count + readings.count - total) }
        count += readings.count
        messages.append(Message(payload: ["interval": .string(ISO8601.string(start))], topic: "simulate/community", readings: readings))
        start.addTimeInterval(900)
    }
    return messages
}

/// The same rows as CSV for `\copy` into `readings_peer` (all columns, as the hub stores them).
func peerCSV(_ messages: [Message]) -> String {
    var csv = ""
    csv.reserveCapacity(messages.count * 100 * 3 * 110)
    var seq = 0
    let now = ISO8601.string(Date())
    for message in messages {
        for r in message.readings {
            seq += 1
            csv += "\(r.tenant),\(r.series),\(r.quantity),\(ISO8601.string(r.ts)),\(r.resolution),\(r.value),\(r.unit),\(r.quality.rawValue),\(r.source),1,\(seq),\(now)\n"
        }
    }
    return csv
}

func storeIngestBenchmark(readings total: Int, rounds: Int = 3, batchSize: Int = 20) async throws {
    let server = try PostgresServer.start(durable: true)
    // ENCHUFE_BENCH_PG_LOG=FILE: PostgreSQL logs every statement with its duration, copied to FILE at the end.
    let statementLog = ProcessInfo.processInfo.environment["ENCHUFE_BENCH_PG_LOG"]
    defer {
        if let statementLog {
            try? FileManager.default.removeItem(atPath: statementLog)
            try? FileManager.default.copyItem(atPath: server.directory.appendingPathComponent("server.log").path, toPath: statementLog)
        }
        server.destroy()
    }
    if statementLog != nil {
        try server.psql("ALTER SYSTEM SET log_min_duration_statement = 0")
        try server.psql("SELECT pg_reload_conf()")
    }
    let url = try server.createDatabase(prefix: "bench")
    let database = PostgresServer.database(in: url)
    let store = try PostgresStore(url: url, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
    // The store runs in a task of the benchmark's own, stopped where the store was used last.
    let storeRun = Task { await store.run() }
    try await store.migrate()
    try server.psql("CREATE TABLE readings_peer (LIKE readings INCLUDING ALL)", database: database)

    let messages = simulatedMessages(readings: total)
    let csvPath = server.directory.appendingPathComponent("peer.csv").path
    try peerCSV(messages).write(toFile: csvPath, atomically: true, encoding: .utf8)
    if Commands.isRoot { try Commands.run("/bin/chmod", ["644", csvPath]) }
    let perMessage = Double(total) / Double(messages.count)
    print(String(format: "store-ingest: %d simulated readings (%d messages of ~%.0f readings), store.readings batch_size %d, PostgreSQL on loopback with fsync on; best of %d rounds",
                 total, messages.count, perMessage, batchSize, rounds))

    var registry = NodeRegistry(CoreNodes.specs)
    registry.register(NodeSpec(type: "bench.prepared", kind: .source, summary: "", options: [], example: "", make: { _ in .source(PreparedSource(messages: messages)) }))
    let yaml = """
        flow: ingest
        tenant: bench
        nodes:
          - { id: sim, type: bench.prepared, to: [store] }
          - { id: store, type: store.readings, batch_size: \(batchSize), flush_interval: 1s }
        """
    let (definition, problems) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "bench.yaml")
    guard let definition, problems.isEmpty else { throw CocoaError(.featureUnsupported, userInfo: ["problems": "\(problems)"]) }

    func hubRate() async throws -> Double {
        try server.psql("TRUNCATE readings", database: database)
        try server.psql("CHECKPOINT", database: database)
        let hub = Hub(flows: [definition], registry: registry, environment: EngineEnvironment(store: store, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }))
        let started = ContinuousClock.now
        await hub.runFlows()
        let seconds = (ContinuousClock.now - started).seconds
        let stored = Int(try server.psql("SELECT count(*) FROM readings", database: database)) ?? -1
        guard stored == total else { throw CocoaError(.coderInvalidValue, userInfo: ["stored": stored, "expected": total]) }
        return Double(total) / seconds
    }

    func psqlRate() throws -> Double {
        try server.psql("TRUNCATE readings_peer", database: database)
        try server.psql("CHECKPOINT", database: database)
        let started = ContinuousClock.now
        try Commands.run(server.psqlPath, [
            "-h", "127.0.0.1", "-p", "\(server.port)", "-U", "postgres", "-d", database, "-X", "-v", "ON_ERROR_STOP=1",
            "-c", "\\copy readings_peer FROM '\(csvPath)' WITH (FORMAT csv)",
        ])
        let seconds = (ContinuousClock.now - started).seconds
        let stored = Int(try server.psql("SELECT count(*) FROM readings_peer", database: database)) ?? -1
        guard stored == total else { throw CocoaError(.coderInvalidValue, userInfo: ["copied": stored, "expected": total]) }
        return Double(total) / seconds
    }

    var best = (hub: 0.0, psql: 0.0)
    for round in 1...rounds {
        // Alternate the order so neither always runs on a warmer server.
        let (hub, psql): (Double, Double)
        if round.isMultiple(of: 2) {
            psql = try psqlRate()
            hub = try await hubRate()
        } else {
            hub = try await hubRate()
            psql = try psqlRate()
        }
        best = (max(best.hub, hub), max(best.psql, psql))
        print(String(format: "  round %d: store.readings %.0f readings/s, psql \\copy %.0f rows/s", round, hub, psql))
    }
    storeRun.cancel()
    await storeRun.value
    print(String(format: "store.readings → PostgreSQL: %.0f readings/s", best.hub))
    print(String(format: "psql \\copy (peer): %.0f rows/s", best.psql))
    print(String(format: "ratio hub/psql: %.2f", best.hub / best.psql))
}
