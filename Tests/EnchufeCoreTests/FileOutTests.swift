import Foundation
import Logging
import Testing

@testable import EnchufeCore

@Suite struct FileOutTests {
    func context(_ store: any Store, now: String) -> NodeContext {
        NodeContext(
            flow: "f", node: "files", tenant: "t1", store: store, clock: VirtualClock(start: ISO8601.date(now)!),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    func build(_ options: [String: JSONValue]) -> NodeBuildContext {
        NodeBuildContext(flow: "f", node: "files", tenant: "t1", options: NodeOptions(values: options), connections: [:],
                         logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    func folder() -> URL { FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-file-out-\(UUID().uuidString)") }

    @Test func theMonthlyCurveFileHoldsLastMonthOnlyAndIsReadBack() async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        // Hourly consumption from 30 October to 2 November 2026 (the 25-hour day is the 25th, outside).
        let start = ISO8601.date("2026-10-29T23:00:00Z")!
        let readings = (0..<96).map { h in
            Reading(tenant: "t1", series: "ES0031000000000001BJ0F", quantity: "consumption", ts: start.addingTimeInterval(Double(h) * 3600), resolution: "PT1H", value: Double(h % 7) * 0.25, unit: "kWh")
        }
        _ = try await store.upsert(readings)
        let node = try FileOutNode(build(["path": .string(dir.path), "format": "f5d", "name": "curves_{month}.txt"]))
        try await node.write([Message()], context(store, now: "2026-11-01T05:00:00Z"))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(files == ["curves_2026-10.txt"], "no part file left behind")
        let back = try CurveFiles.f5d(String(contentsOf: dir.appendingPathComponent("curves_2026-10.txt"), encoding: .utf8))
        let october = readings.filter { $0.ts < ISO8601.date("2026-10-31T23:00:00Z")! }
        #expect(back.count == october.count)
        #expect(back.map(\.ts) == october.map(\.ts) && zip(back, october).allSatisfy { abs($0.value - $1.value) < 1e-9 })
    }

    @Test func theCoefficientsOfAMessageBecomeTheDistributorFileOrNothing() async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let members = ["ES0031000000000001BJ0F", "ES0031000000000002BZ0F", "ES0031000000000003BS0F"]
        for cups in members { try await store.saveSupply(SupplyPoint(tenant: "t1", cups: cups, community: "roof")) }
        let coefficients = CoefficientsNode(NodeOptions(values: ["community": "roof", "mode": "hourly", "year": 2027]))
        let message = try #require(try await coefficients.process(Message(), context(store, now: "2026-11-22T10:00:00Z")).first?.message)
        let node = try FileOutNode(build(["path": .string(dir.path), "format": "coefficients", "source": "message", "cau": "ES0031000000000001BJ0FA000"]))
        try await node.write([message], context(store, now: "2026-11-22T10:00:00Z"))
        let text = try String(contentsOf: dir.appendingPathComponent("ES0031000000000001BJ0FA000_2027.txt"), encoding: .utf8)
        let file = try CoefficientFile.parse(text, year: 2027)
        #expect(file.sets.count == 8760 && file.sets.values.allSatisfy { $0.values.reduce(0, +) == 1_000_000 })
        #expect(text == message.payload["file"]?.stringValue, "the node's file and file.out's are the same")

        var broken = message
        broken.readings[0].value += 0.000001
        let other = try FileOutNode(build(["path": .string(dir.path), "format": "coefficients", "source": "message", "name": "broken.txt"]))
        await #expect(throws: PermanentError.self) { try await other.write([broken], context(store, now: "2026-11-22T10:00:00Z")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["ES0031000000000001BJ0FA000_2027.txt"])
    }
}
