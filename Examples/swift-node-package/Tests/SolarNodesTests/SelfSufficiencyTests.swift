import EnchufeCore
import Foundation
import Logging
import Testing

@testable import SolarNodes

@Suite struct SelfSufficiencyTests {
    @Test func eachIntervalWithDemandGetsItsShare() async throws {
        let t0 = Date(timeIntervalSince1970: 1_782_000_000)
        func reading(_ quantity: String, _ hour: Double, _ value: Double) -> Reading {
            Reading(series: "ES0031000000000001BJ0F", quantity: quantity, ts: t0.addingTimeInterval(hour * 3600), resolution: "PT1H", value: value, unit: "kWh")
        }
        let message = Message(readings: [
            reading("consumption", 0, 0.3), reading("self_consumption", 0, 0.9),
            reading("consumption", 1, 0), reading("self_consumption", 1, 0),
            reading("consumption", 2, 1.2),
        ])
        // Made as the engine makes it: by the spec's factory, from a node's options.
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let make = try #require(SelfSufficiencyNode.spec.make)
        let built = try make(NodeBuildContext(flow: "f", node: "n", tenant: "t", options: NodeOptions(values: ["decimals": 1]), logger: quiet, metrics: HubMetrics()))
        guard case .transform(let node) = built else { Issue.record("not a transform"); return }
        let store = try SQLiteStore(path: ":memory:")
        let context = NodeContext(flow: "f", node: "n", tenant: "t", store: store, clock: SystemClock(), logger: quiet, metrics: HubMetrics())
        let out = try await node.process(message, context)
        let shares = out.first?.message.readings.filter { $0.quantity == "self_sufficiency" } ?? []
        #expect(shares.map(\.value) == [75.0], "only the first hour has both parts and some demand")
        #expect(shares.first?.unit == "%" && shares.first?.quality == .computed)
        #expect(out.first?.message.readings.count == 6)
    }
}
