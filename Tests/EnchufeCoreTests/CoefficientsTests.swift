import Foundation
import Logging
import Testing

@testable import EnchufeCore

@Suite struct SharingCoefficientsTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Coefficients")

    @Test func everyAllocationSumsToExactlyOneAndStaysWithinAMicroUnitOfItsShare() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let count = Int.random(in: 1...40, using: &generator)
            let weights = (0..<count).map { _ in Double.random(in: 0...5, using: &generator) * (Bool.random(using: &generator) ? 1 : 1e-7) }
            let shares = SharingCoefficients.allocate(weights)
            #expect(shares.reduce(0, +) == 1_000_000, "\(weights)")
            let total = weights.reduce(0, +)
            for (w, s) in zip(weights, shares) {
                #expect(abs(Double(s) - w / total * 1_000_000) < 1, "\(w) of \(total) → \(s)")
            }
        }
        #expect(SharingCoefficients.allocate([1, 1, 1]) == [333_334, 333_333, 333_333])
        #expect(SharingCoefficients.allocate([0, 0]) == [500_000, 500_000])
        #expect(SharingCoefficients.allocate([2, -1, .nan]) == [1_000_000, 0, 0])
        #expect(SharingCoefficients.text(micro: 166_667) == "0,166667")
        #expect(SharingCoefficients.text(micro: 1_000_000) == "1,000000")
    }

    @Test func theReferenceFilesAreReadAndTheHourlyExcerptIsNotAWholeYear() throws {
        let fixed = try String(contentsOf: Self.dir.appendingPathComponent("ES0031000000000001BJ0FA000_2025.txt"), encoding: .utf8)
        let file = try CoefficientFile.parse(fixed)
        #expect(file.kind == .static)
        #expect(file.sets[0]?["ES0031000000000002BZ0F"] == 333_333)
        #expect(file.text() == fixed)
        let excerpt = try String(contentsOf: Self.dir.appendingPathComponent("ES0031000000000001BJ0FA000_2025.hourly_EXCERPT_48h.txt"), encoding: .utf8)
        let hourly = try CoefficientFile.parse(excerpt)
        #expect(hourly.kind == .hourly && hourly.sets.count == 48)
        #expect(hourly.text() == excerpt)
        #expect(throws: CoefficientFile.Problem(line: nil, message: "hour 49 of 2025 is missing (an hourly file has all 8760)")) {
            try CoefficientFile.parse(excerpt, year: 2025)
        }
        #expect(CoefficientFile.name(cau: "ES0031000000000001BJ0FA000", year: 2025) == "ES0031000000000001BJ0FA000_2025.txt")
    }

    @Test(arguments: [
        ("ES0031000000000001BJ0F;0,500000\nES0031000000000002BZ0F;0,499999\n", "the coefficients sum to 0,999999, not exactly 1,000000"),
        ("ES0031000000000001BJ0F;0,5\n", "line 1: '0,5' is not a coefficient with a decimal comma and six decimals between 0,000000 and 1,000000"),
        ("ES0031000000000001BJ0F;1.000000\n", "line 1: '1.000000' is not a coefficient with a decimal comma and six decimals between 0,000000 and 1,000000"),
        ("ES0031000000000001BJ0F;1,000001\n", "line 1: '1,000001' is not a coefficient with a decimal comma and six decimals between 0,000000 and 1,000000"),
        ("ES0031000000000001XX0F;1,000000\n", "line 1: 'ES0031000000000001XX0F' is not a 22-character CUPS with valid check letters"),
        ("ES0031000000000001BJ;1,000000\n", "line 1: 'ES0031000000000001BJ' is not a 22-character CUPS with valid check letters"),
        ("ES0031000000000001BJ0F;0,500000\nES0031000000000001BJ0F;0,500000\n", "line 2: ES0031000000000001BJ0F appears twice"),
        ("ES0031000000000001BJ0F;1;1,000000\nES0031000000000001BJ0F;1,000000\n", "line 2: mixes static and hourly lines"),
        ("ES0031000000000001BJ0F;1;1,000000\nES0031000000000002BZ0F;2;1,000000\n", "ES0031000000000002BZ0F has no coefficient for hour 1"),
        ("", "the file has no coefficients"),
    ])
    func aBadFileIsRefusedWithWhatIsWrong(_ text: String, _ problem: String) {
        #expect(throws: (any Error).self) { try CoefficientFile.parse(text) }
        do {
            _ = try CoefficientFile.parse(text)
        } catch {
            #expect(error.description == problem)
        }
    }

    @Test func hoursOfTheYearCountElapsedHoursAcrossTheDSTDays() {
        let madrid = LocalDay.madrid
        #expect(SharingCoefficients.hourOfYear(ISO8601.date("2025-12-31T23:00:00Z")!, zone: madrid) == (2026, 1))
        // 29 March 2026 has 23 hours: 02:00 local does not exist, hours keep counting.
        let spring = LocalDay(year: 2026, month: 3, day: 29).start(in: madrid)
        #expect(SharingCoefficients.hourOfYear(spring.addingTimeInterval(3 * 3600), zone: madrid).hour == 87 * 24 + 4)
        #expect(SharingCoefficients.hourOfYear(LocalDay(year: 2027, month: 1, day: 1).start(in: madrid).addingTimeInterval(-1), zone: madrid) == (2026, 8760))
        #expect(SharingCoefficients.hourStart(year: 2026, hour: 8760, zone: madrid) == ISO8601.date("2026-12-31T22:00:00Z"))
        #expect(SharingCoefficients.hours(in: 2028) == 8784)
    }
}

@Suite struct CoefficientsNodeTests {
    static let members = ["ES0031000000000001BJ0F", "ES0031000000000002BZ0F", "ES0031000000000003BS0F"]

    func context(_ store: any Store, now: String = "2026-11-22T10:00:00Z") -> NodeContext {
        NodeContext(
            flow: "f", node: "betas", tenant: "t1", store: store, clock: VirtualClock(start: ISO8601.date(now)!),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    func communityStore() async throws -> SQLiteStore {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        for cups in Self.members { try await store.saveSupply(SupplyPoint(tenant: "t1", cups: cups, tariff: "2.0TD", community: "roof")) }
        try await store.saveSupply(SupplyPoint(tenant: "t1", cups: "ES0031000000000004BQ0F", community: "other"))
        try await store.saveSupply(SupplyPoint(tenant: "t2", cups: "ES0031000000000005BV0F", community: "roof"))
        return store
    }

    @Test func staticCoefficientsShareOneByConsumption() async throws {
        let store = try await communityStore()
        let start = ISO8601.date("2026-01-05T00:00:00Z")!
        var readings: [Reading] = []
        for (m, cups) in Self.members.enumerated() {
            for h in 0..<100 {
                readings.append(Reading(tenant: "t1", series: cups, quantity: "consumption", ts: start.addingTimeInterval(Double(h) * 3600), resolution: "PT1H", value: Double(m + 1) / 3, unit: "kWh"))
            }
        }
        _ = try await store.upsert(readings)
        let node = CoefficientsNode(NodeOptions(values: ["community": "roof", "cau": "ES0031000000000001BJ0FA000"]))
        let out = try #require(try await node.process(Message(), context(store)).first?.message)
        let text = try #require(out.payload["file"]?.stringValue)
        // 1 : 2 : 3 of the consumption → 1/6, 2/6, 3/6, rounded so that they sum to exactly 1.
        #expect(text == "ES0031000000000001BJ0F;0,166667\nES0031000000000002BZ0F;0,333333\nES0031000000000003BS0F;0,500000\n")
        #expect(try CoefficientFile.parse(text).sets[0]?.values.reduce(0, +) == 1_000_000)
        #expect(out.payload["name"]?.stringValue == "ES0031000000000001BJ0FA000_2026.txt")
        #expect(out.readings.map(\.series) == Self.members)
        #expect(out.readings.allSatisfy { $0.quantity == "coefficient" && $0.resolution == "P1Y" && $0.ts == ISO8601.date("2025-12-31T23:00:00Z") })
    }

    @Test func hourlyCoefficientsForAYearSumToExactlyOneInEveryHour() async throws {
        let store = try await communityStore()
        // 2026 (the basis, with both DST days): quarter-hourly consumption of the three members,
        // varying by hour; the second member consumes nothing at night.
        let zone = LocalDay.madrid
        let yearStart = LocalDay(year: 2026, month: 1, day: 1).start(in: zone)
        var readings: [Reading] = []
        var generator = SplitMix(seed: 9)
        for q in 0..<(8760 * 4) {
            let ts = yearStart.addingTimeInterval(Double(q) * 900)
            let hour = Calendar.madrid.component(.hour, from: ts)
            for (m, cups) in Self.members.enumerated() {
                let value = m == 1 && hour < 7 ? 0 : Double(generator.next() % 1000) / 3000 + Double(m) * 0.01
                readings.append(Reading(tenant: "t1", series: cups, quantity: "consumption", ts: ts, resolution: "PT15M", value: value, unit: "kWh"))
            }
        }
        _ = try await store.upsert(readings)
        let node = CoefficientsNode(NodeOptions(values: ["community": "roof", "mode": "hourly", "year": 2027]))
        let out = try #require(try await node.process(Message(), context(store)).first?.message)
        let text = try #require(out.payload["file"]?.stringValue)
        // The file is whole and exact: every hour of 2027 for every member, each hour summing to 1,000000.
        let file = try CoefficientFile.parse(text, year: 2027)
        #expect(file.sets.count == 8760)
        #expect(file.sets.values.allSatisfy { $0.count == 3 && $0.values.reduce(0, +) == 1_000_000 })
        #expect(text.split(separator: "\n").count == 3 * 8760)
        // Hour 3 of the year (02:00–03:00 on 1 January) comes from 2026's hour 3: no night consumption for member 2.
        #expect(file.sets[3]?["ES0031000000000002BZ0F"] == 0)
        // Each hour's coefficients follow that hour of 2026.
        let h = 4000
        let basisStart = SharingCoefficients.hourStart(year: 2026, hour: h, zone: zone)
        let basis = Self.members.map { cups in
            readings.filter { $0.series == cups && $0.ts >= basisStart && $0.ts < basisStart.addingTimeInterval(3600) }.map(\.value).reduce(0, +)
        }
        #expect(Self.members.enumerated().map { file.sets[h]?[$1] } == SharingCoefficients.allocate(basis))
        #expect(out.readings.count == 3 * 8760)
        #expect(out.readings.first?.ts == SharingCoefficients.hourStart(year: 2027, hour: 1, zone: zone))
    }

    @Test func aCommunityWithoutMembersAndBadOptionsAreNamed() async throws {
        let store = try await communityStore()
        await #expect(throws: PermanentError.self) {
            _ = try await CoefficientsNode(NodeOptions(values: ["community": "nobody"])).process(Message(), context(store))
        }
        let problems = CoefficientsNode.spec.check!(NodeOptions(values: ["members": ["ES0031000000000001XX0F"], "from": "last year", "cau": "ES0031"]))
        #expect(problems.map(\.option) == ["from", "members.0", "cau"])
        #expect(CoefficientsNode.spec.check!(NodeOptions(values: [:])).map(\.option) == ["community"])
    }
}

/// A seeded generator, so a failure can be reproduced.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Calendar {
    static let madrid: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = LocalDay.madrid
        return c
    }()
}
