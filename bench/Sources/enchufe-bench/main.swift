// Benchmarks of the hub, each against its peer in the same run (see bench/README.md).
//
//   enchufe-bench [transforms] [MESSAGES]     the cost of a Lua step (default 200000 messages)
//   enchufe-bench store-ingest [READINGS]     store.readings into PostgreSQL against psql \\copy (default 1000000)
//   enchufe-bench mqtt-to-postgres [MESSAGES] MQTT → PostgreSQL against the broker and a Python peer (default 200000)
//   enchufe-bench webhook-ingest [SECONDS]    webhook.in → store against SQLite's C API, and the hub's JSON reader against JSONDecoder, with wrk (default 10 s each)
//   enchufe-bench export [READINGS]           CSV over HTTP from PostgreSQL against psql \\copy TO STDOUT (default 1000000)
//   enchufe-bench optimize [RUNS]             optimize.schedule's solver on a 96-interval day with 10 assets against glpsol (default 20 runs)
//   enchufe-bench dashboard [RUNS]            a 100-member community's month: the dashboard route against one GROUP BY, the page in Chromium (default 10 runs)
@preconcurrency import Glibc
import CJemalloc  // the hub's allocator (Package.swift), so the engine runs here as it runs in `enchufe`
import Foundation

setvbuf(stdout, nil, _IOLBF, 0)  // each figure as soon as it is measured, also into a pipe
var arguments = Array(CommandLine.arguments.dropFirst())
let name = arguments.first.map { Int($0) == nil ? arguments.removeFirst() : "transforms" } ?? "transforms"
let count = arguments.first.flatMap(Int.init)
switch name {
case "transforms":
    try await transformsBenchmark(messages: count ?? 200_000)
case "store-ingest":
    try await storeIngestBenchmark(readings: count ?? 1_000_000)
case "mqtt-to-postgres":
    let environment = ProcessInfo.processInfo.environment
    try await mqttToPostgresBenchmark(
        messages: count ?? 200_000, python: environment["ENCHUFE_BENCH_PYTHON"] ?? "/usr/bin/python3",
        peerScript: environment["ENCHUFE_BENCH_PEER"] ?? "bench/peers/mqtt_to_postgres.py")
case "webhook-ingest":
    try await webhookIngestBenchmark(seconds: count ?? 10)
case "export":
    try await exportBenchmark(readings: count ?? 1_000_000)
case "optimize":
    try await optimizeBenchmark(runs: count ?? 20)
case "dashboard":
    try await dashboardBenchmark(runs: count ?? 10)
default:
    print("unknown benchmark '\(name)' (transforms, store-ingest, mqtt-to-postgres, webhook-ingest, export, optimize, dashboard)")
    exit(2)
}
