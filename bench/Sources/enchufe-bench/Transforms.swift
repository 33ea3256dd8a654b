// transforms: readings/s through map → filter → lua → batch, against map → filter → batch (the same
// chain without the Lua step), both on the real engine with bounded queues.
import EnchufeCore
import Foundation
import Logging
import Synchronization

/// Sends `count` messages, each with one power reading, as fast as the flow takes them, in bursts
/// of `burst` messages (each its own input with its own delivery, as a burst of MQTT messages is).
/// The messages are made before the clock starts (the benchmark measures the engine and its
/// transforms, not the making of test data) and handed over as a real source's are: the generator
/// keeps no reference to what it sent.
final class Generator: SourceNode {
    let bursts: Mutex<[[Message]]>

    init(count: Int, burst: Int = 256) {
        let start = Date(timeIntervalSince1970: 1_735_689_600)
        let messages = (0..<count).map { i in
            Message(
                payload: ["device": .string("inv-\(i % 50)"), "w": .number(Double(i % 5000))], topic: "site/inv-\(i % 50)/power",
                readings: [Reading(series: "device:inv-\(i % 50)", quantity: "power", ts: start.addingTimeInterval(Double(i)), resolution: "PT0S", value: Double(i % 5000), unit: "W")])
        }
        bursts = Mutex(stride(from: 0, to: count, by: burst).reversed().map { Array(messages[$0..<min(count, $0 + burst)]) })
    }

    func run(_ context: SourceContext) async throws {
        while let burst = bursts.withLock({ $0.popLast() }) {
            try await context.emit(each: burst)
        }
    }
}

/// Counts the readings that reach it.
final class Counter: SinkNode {
    let readings = Atomic<Int>(0)
    let batching = Batching(size: 64, flushInterval: .zero)
    func write(_ batch: [Message], _ context: NodeContext) async throws {
        readings.add(batch.reduce(0) { $0 + $1.readings.count }, ordering: .relaxed)
    }
}

/// The flow: the generator, then `nodes` in a row, then the counter. `map` computes a field with an
/// expression and one from a topic template, `filter` drops a tenth, `lua` rescales every reading
/// of the message, `batch` groups 500, `pass` is a filter that keeps everything, `lua-identity` a `lua` node
/// returning the message it was given (what handing a message to Lua and back costs).
func chainFlow(_ nodes: [String]) -> String {
    var text = "flow: bench\nnodes:\n  - id: source\n    type: bench.generator\n    to: [n0]\n"
    let bodies = [
        "map": "    type: map\n    set:\n      payload.kw: \"=msg.payload.w / 1000\"\n      attributes.device: \"{topic.2}\"\n",
        "filter": "    type: filter\n    when: msg.payload.w % 10 ~= 0\n",
        "pass": "    type: filter\n    when: \"true\"\n",
        "batch": "    type: batch\n    count: 500\n",
        "lua": "    type: lua\n    script: |\n      function process(msg)\n        for _, r in ipairs(msg.readings) do\n          r.value = r.value / 1000\n          r.unit = \"kW\"\n        end\n        return msg\n      end\n",
        "lua-identity": "    type: lua\n    script: |\n      function process(msg) return msg end\n",
    ]
    for (i, n) in nodes.enumerated() {
        text += "  - id: n\(i)\n" + bodies[n]! + "    to: [n\(i + 1)]\n"
    }
    return text + "  - id: n\(nodes.count)\n    type: bench.counter\n"
}

/// Readings per second through `map → filter → lua → batch` (or without `lua`), and the CPU time
/// (all threads) per message sent, in µs. `ENCHUFE_BENCH_NODES=map,lua` runs another row of nodes
/// instead, to measure (or profile) one node type at a time.
func runTransforms(messages: Int, withLua: Bool) async throws -> (rate: Double, cpu: Double) {
    let nodes = ProcessInfo.processInfo.environment["ENCHUFE_BENCH_NODES"]?.split(separator: ",").map(String.init)
        ?? (withLua ? ["map", "filter", "lua", "batch"] : ["map", "filter", "batch"])
    let counter = Counter()
    let generator = Generator(count: messages)
    var registry = NodeRegistry(CoreNodes.specs)
    registry.register(NodeSpec(type: "bench.generator", kind: .source, summary: "", options: [], example: "", make: { _ in .source(generator) }))
    registry.register(NodeSpec(type: "bench.counter", kind: .sink, summary: "", options: [], example: "", make: { _ in .sink(counter) }))
    let (definition, problems) = FlowLoader(registry: registry, environment: [:]).load(text: chainFlow(nodes), file: "bench.yaml")
    guard let definition, problems.isEmpty else { throw CocoaError(.featureUnsupported, userInfo: ["problems": "\(problems)"]) }
    let store = try SQLiteStore(path: ":memory:")
    try await store.migrate()
    let hub = Hub(
        flows: [definition], registry: registry,
        environment: EngineEnvironment(store: store, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }))
    let started = ContinuousClock.now
    let cpuBefore = cpuSeconds(getpid())
    await hub.runFlows()
    let elapsed = (ContinuousClock.now - started).seconds
    let cpu = cpuSeconds(getpid()) - cpuBefore
    let expected = nodes.contains("filter") ? (0..<messages).filter { ($0 % 5000) % 10 != 0 }.count : messages
    guard counter.readings.load(ordering: .relaxed) == expected else {
        throw CocoaError(.coderInvalidValue, userInfo: ["counted": counter.readings.load(ordering: .relaxed), "expected": expected])
    }
    return (Double(expected) / elapsed, cpu / Double(messages) * 1e6)
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

func transformsBenchmark(messages: Int, rounds: Int = 3) async throws {
    print("transforms: \(messages) messages of 1 reading each; best of \(rounds) rounds")
    if let nodes = ProcessInfo.processInfo.environment["ENCHUFE_BENCH_NODES"] {
        var best = (rate: 0.0, cpu: Double.infinity)
        for round in 1...rounds {
            let run = try await runTransforms(messages: messages, withLua: false)
            best = (max(best.rate, run.rate), min(best.cpu, run.cpu))
            print(String(format: "  round %d: %.0f readings/s (%.2f µs CPU per message)", round, run.rate, run.cpu))
        }
        print(String(format: "%@: %.0f readings/s, %.2f µs CPU per message", nodes, best.rate, best.cpu))
        return
    }
    var best: (with: Double, without: Double) = (0, 0)
    var leastCPU: (with: Double, without: Double) = (.infinity, .infinity)
    for round in 1...rounds {
        let without = try await runTransforms(messages: messages, withLua: false)
        let with = try await runTransforms(messages: messages, withLua: true)
        best = (max(best.with, with.rate), max(best.without, without.rate))
        leastCPU = (min(leastCPU.with, with.cpu), min(leastCPU.without, without.cpu))
        print(String(format: "  round %d: map→filter→batch %.0f readings/s (%.2f µs CPU per message), map→filter→lua→batch %.0f readings/s (%.2f µs)", round, without.rate, without.cpu, with.rate, with.cpu))
    }
    print(String(format: "map→filter→lua→batch: %.0f readings/s, %.2f µs CPU per message", best.with, leastCPU.with))
    print(String(format: "map→filter→batch (peer, no Lua): %.0f readings/s, %.2f µs CPU per message", best.without, leastCPU.without))
    print(String(format: "ratio with/without Lua: %.2f (the Lua step costs %.1f µs per reading)", best.with / best.without, (1 / best.with - 1 / best.without) * 1e6))
}
