// export: 1,000,000 readings streamed as CSV from PostgreSQL by `enchufe run` over HTTP
// (`GET /api/v1/readings?format=csv`), against `psql \copy (SELECT ...) TO STDOUT` of the same rows.
import EnchufeCore
import Foundation
import Logging
import Postgres
import TestSupport

func exportBenchmark(readings total: Int) async throws {
    let rounds = Int(ProcessInfo.processInfo.environment["ENCHUFE_BENCH_ROUNDS"] ?? "") ?? 3
    guard let curl = Commands.find(["/usr/bin/curl"]) else {
        print("curl is not installed (apt-get install curl)")
        exit(2)
    }
    let enchufe = try releasedEnchufe()

    let server = try PostgresServer.start()
    defer { server.destroy() }
    let url = try server.createDatabase(prefix: "bench")
    let database = PostgresServer.database(in: url)
    let store = try PostgresStore(url: url, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
    let key = try await store.whileRunning {
        try await store.migrate()
        return try await APIKeys.create(tenant: "bench", scopes: ["read"], name: "bench", at: Date(), store: store).1
    }

    // The readings, loaded straight into the hub's table (the benchmark is about reading them out).
    let csvPath = server.directory.appendingPathComponent("load.csv").path
    try peerCSV(simulatedMessages(readings: total)).write(toFile: csvPath, atomically: true, encoding: .utf8)
    if Commands.isRoot { try Commands.run("/bin/chmod", ["644", csvPath]) }
    try Commands.run(server.psqlPath, [
        "-h", "127.0.0.1", "-p", "\(server.port)", "-U", "postgres", "-d", database, "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-c", "\\copy readings FROM '\(csvPath)' WITH (FORMAT csv)",
    ])
    try server.psql("VACUUM ANALYZE readings", database: database)
    try? FileManager.default.removeItem(atPath: csvPath)

    // The hub: `enchufe run` on the PostgreSQL store, with an idle flow.
    let dir = server.directory.appendingPathComponent("hub")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try """
        flow: idle
        tenant: bench
        nodes:
          - { id: tick, type: schedule, every: 1d, run_at_start: false, to: [out] }
          - { id: out, type: log }
        """.write(to: dir.appendingPathComponent("idle.yaml"), atomically: true, encoding: .utf8)
    let hub = try RunningHub(binary: enchufe, ["run", "--store", url, "--http", "127.0.0.1:0", "idle.yaml"], in: dir)
    defer { hub.terminate() }
    let base = hub.base

    let hubOut = server.directory.appendingPathComponent("hub.csv").path
    let psqlOut = server.directory.appendingPathComponent("psql.csv").path
    func timed(_ command: String, out: String) throws -> (rate: Double, bytes: Int) {
        try? FileManager.default.removeItem(atPath: out)
        let started = ContinuousClock.now
        try Commands.run("/bin/sh", ["-c", command])
        let seconds = (ContinuousClock.now - started).seconds
        let data = try Data(contentsOf: URL(fileURLWithPath: out))
        let rows = data.reduce(0) { $1 == 10 ? $0 + 1 : $0 } - 1  // less the header
        guard rows == total else { throw BenchError("`\(command)` wrote \(rows) rows, not \(total)") }
        return (Double(total) / seconds, data.count)
    }
    func hubRate() throws -> (rate: Double, bytes: Int) {
        try timed("\(curl) -sS --fail-with-body -H 'Authorization: Bearer \(key)' '\(base)/api/v1/readings?format=csv' > \(hubOut)", out: hubOut)
    }
    func psqlRate() throws -> (rate: Double, bytes: Int) {
        // The same rendering as the hub's csv (milliseconds only when present, no negative zero);
        // COPY quotes fields as the hub does.
        let select = """
            SELECT series, quantity, \
            to_char(ts AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', ts) = ts THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"' END) AS ts, \
            resolution, CASE WHEN value = 0 THEN '0' ELSE value::text END AS value, unit, quality, revision, seq \
            FROM readings WHERE tenant = 'bench' ORDER BY readings.series, readings.quantity, readings.ts
            """
        return try timed("\(server.psqlPath) -h 127.0.0.1 -p \(server.port) -U postgres -d \(database) -X -q -v ON_ERROR_STOP=1 -c \"\\copy (\(select.replacingOccurrences(of: "\"", with: "\\\""))) TO STDOUT WITH (FORMAT csv, HEADER)\" > \(psqlOut)", out: psqlOut)
    }

    print("export: \(total) readings as CSV, PostgreSQL 15 on loopback; hub: enchufe run, GET /api/v1/readings?format=csv with curl; peer: psql \\copy (SELECT ... ORDER BY series, quantity, ts) TO STDOUT; best of \(rounds) alternating rounds")
    var best = (hub: 0.0, psql: 0.0)
    var sizes = (hub: 0, psql: 0)
    for round in 1...rounds {
        let (h, p): ((rate: Double, bytes: Int), (rate: Double, bytes: Int))
        // ENCHUFE_BENCH_ONLY=hub runs the hub's side alone (to profile it); no ratio then.
        if ProcessInfo.processInfo.environment["ENCHUFE_BENCH_ONLY"] == "hub" {
            h = try hubRate()
            print(String(format: "  round %d: hub %.0f rows/s", round, h.rate))
            best.hub = max(best.hub, h.rate)
            continue
        }
        if round.isMultiple(of: 2) {
            p = try psqlRate()
            h = try hubRate()
        } else {
            h = try hubRate()
            p = try psqlRate()
        }
        best = (max(best.hub, h.rate), max(best.psql, p.rate))
        sizes = (h.bytes, p.bytes)
        print(String(format: "  round %d: hub %.0f rows/s, psql \\copy %.0f rows/s", round, h.rate, p.rate))
    }
    let identical = try Data(contentsOf: URL(fileURLWithPath: hubOut)) == Data(contentsOf: URL(fileURLWithPath: psqlOut))
    let status = (try? String(contentsOfFile: "/proc/\(hub.process.processIdentifier)/status", encoding: .utf8)) ?? ""
    let peakKiB = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
    print(String(format: "hub (GET /api/v1/readings?format=csv): %.0f rows/s, %d bytes", best.hub, sizes.hub))
    print(String(format: "psql \\copy TO STDOUT (peer): %.0f rows/s, %d bytes", best.psql, sizes.psql))
    if best.psql > 0 { print("outputs byte for byte identical: \(identical ? "yes" : "NO")") }
    print(String(format: "hub peak memory (VmHWM of enchufe run): %.1f MB", Double(peakKiB) / 1024))
    if best.psql > 0 { print(String(format: "ratio hub/psql: %.2f", best.hub / best.psql)) }
}
