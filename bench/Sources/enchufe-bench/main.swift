// Benchmarks of the hub, each against its peer in the same run (see bench/README.md).
//
//   enchufe-bench [transforms] [MESSAGES]     the cost of a Lua step (default 200000 messages)
//   enchufe-bench store-ingest [READINGS]     store.readings into PostgreSQL against psql \\copy (default 1000000)
import Foundation

var arguments = Array(CommandLine.arguments.dropFirst())
let name = arguments.first.map { Int($0) == nil ? arguments.removeFirst() : "transforms" } ?? "transforms"
let count = arguments.first.flatMap(Int.init)
switch name {
case "transforms":
    try await transformsBenchmark(messages: count ?? 200_000)
case "store-ingest":
    try await storeIngestBenchmark(readings: count ?? 1_000_000)
default:
    print("unknown benchmark '\(name)' (transforms, store-ingest)")
    exit(2)
}
