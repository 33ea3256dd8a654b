// transforms: readings/s through map → filter → lua → batch, against map → filter → batch (the same
// chain without the Lua step), both on the real engine with bounded queues.
import EnchufeCore
import Foundation
import Logging
import Synchronization

/// Sends `count` messages, each with one power reading, as fast as the flow takes them, in bursts
/// of `burst` messages (each its own input with its own delivery, as a burst of MQTT messages is).
struct Generator: SourceNode {
    let count: Int
    var burst = 256
    func run(_ context: SourceContext) async throws {
        let start = Date(timeIntervalSince1970: 1_735_689_600)
        for first in stride(from: 0, to: count, by: burst) {
            let messages = (first..<min(count, first + burst)).map { i in
                Message(
                    payload: ["device": .string("inv-\(i % 50)"), "w": .number(Double(i % 5000))], topic: "site/inv-\(i % 50)/power",
                    readings: [Reading(series: "device:inv-\(i % 50)", quantity: "power", ts: start.addingTimeInterval(Double(i)), resolution: "PT0S", value: Double(i % 5000), unit: "W")])
            }
            try await context.emit(each: messages)
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

func flow(withLua: Bool) -> String {
    """
    flow: bench
    nodes:
      - id: source
        type: bench.generator
        to: [to-kw]
      - id: to-kw
        type: map
        set:
          payload.kw: "=msg.payload.w / 1000"
          attributes.device: "{topic.2}"
      - id: producing
        type: filter
        when: msg.payload.w % 10 ~= 0
    \(withLua ? """
      - id: script
        type: lua
        script: |
          function process(msg)
            for _, r in ipairs(msg.readings) do
              r.value = r.value / 1000
              r.unit = "kW"
            end
            return msg
          end
        to: [group]
    """ : "")
      - id: group
        type: batch
        count: 500
        to: [count]
      - id: count
        type: bench.counter
    """
    .replacingOccurrences(of: "type: map\n", with: "type: map\n    to: [producing]\n")
    .replacingOccurrences(of: "~= 0\n", with: withLua ? "~= 0\n    to: [script]\n" : "~= 0\n    to: [group]\n")
}

func runTransforms(messages: Int, withLua: Bool) async throws -> Double {
    let counter = Counter()
    var registry = NodeRegistry(CoreNodes.specs)
    registry.register(NodeSpec(type: "bench.generator", kind: .source, summary: "", options: [], example: "", make: { _ in .source(Generator(count: messages)) }))
    registry.register(NodeSpec(type: "bench.counter", kind: .sink, summary: "", options: [], example: "", make: { _ in .sink(counter) }))
    let (definition, problems) = FlowLoader(registry: registry, environment: [:]).load(text: flow(withLua: withLua), file: "bench.yaml")
    guard let definition, problems.isEmpty else { throw CocoaError(.featureUnsupported, userInfo: ["problems": "\(problems)"]) }
    let store = try SQLiteStore(path: ":memory:")
    try await store.migrate()
    let hub = Hub(
        flows: [definition], registry: registry,
        environment: EngineEnvironment(store: store, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }))
    let started = ContinuousClock.now
    await hub.runFlows()
    let elapsed = (ContinuousClock.now - started).seconds
    let expected = (0..<messages).filter { ($0 % 5000) % 10 != 0 }.count
    guard counter.readings.load(ordering: .relaxed) == expected else {
        throw CocoaError(.coderInvalidValue, userInfo: ["counted": counter.readings.load(ordering: .relaxed), "expected": expected])
    }
    return Double(expected) / elapsed
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

func transformsBenchmark(messages: Int, rounds: Int = 3) async throws {
    print("transforms: \(messages) messages of 1 reading each; best of \(rounds) rounds")
    var best: (with: Double, without: Double) = (0, 0)
    for round in 1...rounds {
        let without = try await runTransforms(messages: messages, withLua: false)
        let with = try await runTransforms(messages: messages, withLua: true)
        best = (max(best.with, with), max(best.without, without))
        print(String(format: "  round %d: map→filter→batch %.0f readings/s, map→filter→lua→batch %.0f readings/s", round, without, with))
    }
    print(String(format: "map→filter→lua→batch: %.0f readings/s", best.with))
    print(String(format: "map→filter→batch (peer, no Lua): %.0f readings/s", best.without))
    print(String(format: "ratio with/without Lua: %.2f (the Lua step costs %.1f µs per reading)", best.with / best.without, (1 / best.with - 1 / best.without) * 1e6))
}
