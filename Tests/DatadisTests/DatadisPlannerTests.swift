import EnchufeCore
import Foundation
import Testing

@testable import Datadis

/// The Datadis planner's rules, table by table, in milliseconds: which months, in which order,
/// the 24-hour rule, `older_every`, what is recorded, the request budget, and the month of `now`
/// across month ends, the new year and the DST days (Spain's peninsular time).
@Suite struct DatadisPlannerTests {
    static func instant(_ text: String) -> Date { ISO8601.date(text)! }
    static let hour: TimeInterval = 3600
    static let day: TimeInterval = 86_400

    func month(_ text: String) -> Month { Month(text)! }

    /// The month of `now` is the month of Madrid's clock, not of UTC.
    @Test(arguments: [
        ("2026-03-31T21:59:59Z", "2026-03"),  // 23:59:59 CEST
        ("2026-03-31T22:00:00Z", "2026-04"),  // 00:00 CEST, 1 April
        ("2026-10-31T22:59:59Z", "2026-10"),  // 23:59:59 CET (winter time since 25 October)
        ("2026-10-31T23:00:00Z", "2026-11"),
        ("2026-12-31T23:00:00Z", "2027-01"),  // new year in Madrid, still 2026 in UTC
        ("2026-03-29T00:59:59Z", "2026-03"),  // the spring DST day, 01:59:59 CET
        ("2026-03-29T01:00:00Z", "2026-03"),  // 03:00 CEST
        ("2026-10-25T00:30:00Z", "2026-10"),  // the autumn DST day, 02:30 CEST, before the repeated hour
    ])
    func theCurrentMonthIsMadrids(now: String, expected: String) {
        #expect(DatadisPlanner(now: Self.instant(now), from: nil, olderEvery: 7 * Self.day).current == month(expected))
    }

    /// Current and previous month first, then the older ones from the oldest; 12 months back by
    /// default, never more than 23 back (Datadis keeps 24), nothing before `from`.
    @Test(arguments: [
        (nil as String?, ["2026-05", "2026-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]),
        ("2026-02", ["2026-05", "2026-04", "2026-02", "2026-03"]),
        ("2026-04", ["2026-05", "2026-04"]),
        ("2026-05", ["2026-05"]),
        ("2026-06", []),
        ("2020-01", ["2026-05", "2026-04"] + (0..<22).map { Month(year: 2024, month: 6).adding($0).text }),
    ])
    func theMonthsInTheOrderTheyAreAsked(from: String?, expected: [String]) {
        let planner = DatadisPlanner(now: Self.instant("2026-05-10T08:00:00Z"), from: from.map(month), olderEvery: 7 * Self.day)
        #expect(planner.months.map(\.text) == expected)
        #expect(planner.months.count <= 24, "Datadis keeps the current month and 23 before it")
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        /// Per month: recorded, and hours since the same query was last asked.
        var known: [String: (recorded: Bool, askedHoursAgo: Double?)]
        var olderEveryDays: Double = 7
        var budget = 12
        var requests: [String]
        var deferred: [String] = []
        /// Hours from now to the next request; nil: none.
        var nextDueHours: Double?
        var testDescription: String { name }
    }

    static let now = instant("2026-05-10T08:00:00Z")

    @Test(arguments: [
        Case(name: "nothing known: every month, the current first", known: [:], requests: ["2026-05", "2026-04", "2026-03"], nextDueHours: 24),
        Case(
            name: "the 24-hour rule: the same query one second short of 24 hours is not sent; at 24 hours it is",
            known: ["2026-05": (false, 24 - 1 / 3600), "2026-04": (false, 24)], requests: ["2026-04", "2026-03"], nextDueHours: 1 / 3600),
        Case(
            name: "an older month not complete waits older_every",
            known: ["2026-03": (false, 3 * 24)], requests: ["2026-05", "2026-04"], nextDueHours: 24),
        Case(
            name: "an older month is asked again once older_every has passed",
            known: ["2026-03": (false, 7 * 24)], requests: ["2026-05", "2026-04", "2026-03"], nextDueHours: 24),
        Case(
            name: "older_every below a day still waits 24 hours",
            known: ["2026-03": (false, 12)], olderEveryDays: 1.0 / 24, requests: ["2026-05", "2026-04"], nextDueHours: 12),
        Case(
            name: "a recorded month is never asked, whatever the ledger says",
            known: ["2026-03": (true, nil), "2026-04": (false, 48)], requests: ["2026-05", "2026-04"], nextDueHours: 24),
        Case(
            name: "everything recorded: no request and nothing due",
            known: ["2026-03": (true, nil), "2026-04": (true, nil), "2026-05": (true, nil)], requests: [], nextDueHours: nil),
        Case(
            name: "everything asked recently: due when the first window ends",
            known: ["2026-05": (false, 20), "2026-04": (false, 2), "2026-03": (false, 100)], requests: [], nextDueHours: 4),
        Case(
            name: "a budget of 2: the rest is deferred and due at once",
            known: [:], budget: 2, requests: ["2026-05", "2026-04"], deferred: ["2026-03"], nextDueHours: 0),
        Case(name: "no budget left", known: [:], budget: 0, requests: [], deferred: ["2026-05", "2026-04", "2026-03"], nextDueHours: 0),
        Case(
            name: "an older month not asked for older_every gets the longer window",
            known: [:], olderEveryDays: 3, requests: ["2026-05", "2026-04", "2026-03"], nextDueHours: 24),
    ])
    func thePlan(_ c: Case) {
        let planner = DatadisPlanner(now: Self.now, from: month("2026-03"), olderEvery: c.olderEveryDays * Self.day)
        var known: [Month: DatadisPlanner.Known] = [:]
        for (text, state) in c.known {
            known[month(text)] = DatadisPlanner.Known(recorded: state.recorded, lastAsked: state.askedHoursAgo.map { Self.now.addingTimeInterval(-$0 * Self.hour) })
        }
        let plan = planner.plan(known, budget: c.budget)
        #expect(plan.requests.map(\.text) == c.requests)
        #expect(plan.deferred.map(\.text) == c.deferred)
        // In whole seconds from now.
        #expect(plan.nextDue.map { $0.timeIntervalSince(Self.now).rounded() } == c.nextDueHours.map { ($0 * Self.hour).rounded() })
    }

    /// Once an older month is asked, the supply's next request for it is due older_every later.
    @Test func anOlderMonthAskedNowIsDueAgainAfterOlderEvery() {
        let planner = DatadisPlanner(now: Self.now, from: month("2026-01"), olderEvery: 3 * Self.day)
        let recorded = DatadisPlanner.Known(recorded: true)
        let plan = planner.plan([month("2026-05"): recorded, month("2026-04"): recorded, month("2026-03"): recorded, month("2026-02"): recorded], budget: 12)
        #expect(plan.requests == [month("2026-01")])
        #expect(plan.nextDue == Self.now.addingTimeInterval(3 * Self.day))
    }
}
