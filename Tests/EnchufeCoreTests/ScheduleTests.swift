import EnchufeCore
import Foundation
import Testing

@Suite struct ScheduleTests {
    static let madrid = TimeZone(identifier: "Europe/Madrid")!
    static let canary = TimeZone(identifier: "Atlantic/Canary")!

    func utc(_ text: String) -> Date { ISO8601.date(text)! }

    /// The next `count` fire times after `start`, in UTC.
    func fires(_ cron: String, in zone: TimeZone, after start: String, count: Int) throws -> [String] {
        let schedule = Schedule.cron(try CronExpression(cron), zone)
        var t = utc(start)
        var out: [String] = []
        for _ in 0..<count {
            t = schedule.next(after: t)
            out.append(ISO8601.string(t))
        }
        return out
    }

    // 2026: clocks go forward on 29 March (01:00 UTC) and back on 25 October (01:00 UTC).

    @Test func aDailyJobInTheSpringGapRunsOnceAtTheEndOfTheGapInMadrid() throws {
        // 02:30 does not exist on 29 March in Madrid: the job runs at 03:00 CEST (01:00 UTC), once.
        #expect(try fires("30 2 * * *", in: Self.madrid, after: "2026-03-27T12:00:00Z", count: 4) == [
            "2026-03-28T01:30:00Z",  // 02:30 CET
            "2026-03-29T01:00:00Z",  // 03:00 CEST, the first instant after the gap
            "2026-03-30T00:30:00Z",  // 02:30 CEST
            "2026-03-31T00:30:00Z",
        ])
    }

    @Test func aDailyJobInTheRepeatedAutumnHourRunsOnceInMadrid() throws {
        // 02:30 happens twice on 25 October in Madrid (CEST, then CET): the job runs at the first.
        #expect(try fires("30 2 * * *", in: Self.madrid, after: "2026-10-24T12:00:00Z", count: 3) == [
            "2026-10-25T00:30:00Z",  // 02:30 CEST
            "2026-10-26T01:30:00Z",  // 02:30 CET
            "2026-10-27T01:30:00Z",
        ])
    }

    @Test func hourlyJobsKeepTheirRhythmThroughBothChangesInMadrid() throws {
        // Spring: 02:xx does not exist; the quarter hours go 01:45 CET → 03:00 CEST, 15 minutes apart.
        #expect(try fires("*/15 * * * *", in: Self.madrid, after: "2026-03-29T00:30:00Z", count: 4) == [
            "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z",
        ])
        // Autumn: 02:00-02:59 happens twice and every quarter hour fires in both.
        let autumn = try fires("0 * * * *", in: Self.madrid, after: "2026-10-24T23:30:00Z", count: 4)
        #expect(autumn == ["2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"])
    }

    @Test func theCanaryIslandsChangeAnHourEarlierInLocalTime() throws {
        // Atlantic/Canary jumps from 01:00 WET to 02:00 WEST (01:00 UTC): 01:30 is in the gap.
        #expect(try fires("30 1 * * *", in: Self.canary, after: "2026-03-28T12:00:00Z", count: 2) == [
            "2026-03-29T01:00:00Z",  // 02:00 WEST
            "2026-03-30T00:30:00Z",  // 01:30 WEST
        ])
        // ...and repeats 01:00-01:59 on 25 October: 01:30 runs once, at its first occurrence.
        #expect(try fires("30 1 * * *", in: Self.canary, after: "2026-10-24T12:00:00Z", count: 2) == [
            "2026-10-25T00:30:00Z",  // 01:30 WEST
            "2026-10-26T01:30:00Z",  // 01:30 WET
        ])
        // A 02:30 job is untouched by either change there.
        #expect(try fires("30 2 * * *", in: Self.canary, after: "2026-03-28T12:00:00Z", count: 2) == [
            "2026-03-29T01:30:00Z", "2026-03-30T01:30:00Z",
        ])
    }

    @Test func evenings20h30InMadridAcrossTheYear() throws {
        #expect(try fires("30 20 * * *", in: Self.madrid, after: "2026-03-28T00:00:00Z", count: 2) == [
            "2026-03-28T19:30:00Z", "2026-03-29T18:30:00Z",
        ])
    }

    @Test func dayOfWeekAndDayOfMonthFollowCronRules() throws {
        // Weekdays at 08:00: Friday 27 March 2026, then Monday 30 March.
        #expect(try fires("0 8 * * mon-fri", in: Self.madrid, after: "2026-03-27T00:00:00Z", count: 2) == [
            "2026-03-27T07:00:00Z", "2026-03-30T06:00:00Z",
        ])
        // Both day fields restricted: either matches (the 1st, or any Sunday).
        #expect(try fires("0 0 1 * sun", in: TimeZone(identifier: "UTC")!, after: "2026-03-27T00:00:00Z", count: 3) == [
            "2026-03-29T00:00:00Z", "2026-04-01T00:00:00Z", "2026-04-05T00:00:00Z",
        ])
        // 29 February only: the next one is in 2028.
        #expect(try fires("0 12 29 2 *", in: TimeZone(identifier: "UTC")!, after: "2026-01-01T00:00:00Z", count: 1) == ["2028-02-29T12:00:00Z"])
    }

    @Test func everyIntervalsAreAlignedToTheEpochAndWholeDaysToLocalMidnight() {
        let quarter = Schedule.every(.seconds(900), Self.madrid)
        #expect(ISO8601.string(quarter.next(after: utc("2026-03-29T00:52:10Z"))) == "2026-03-29T01:00:00Z")
        let daily = Schedule.every(.seconds(86400), Self.madrid)
        #expect(ISO8601.string(daily.next(after: utc("2026-03-28T12:00:00Z"))) == "2026-03-28T23:00:00Z")  // midnight CET
        #expect(ISO8601.string(daily.next(after: utc("2026-03-28T23:00:00Z"))) == "2026-03-29T22:00:00Z")  // midnight CEST: a 23-hour day
        // Every other day: local midnights of even epoch day numbers (20542 is 29-30 March 2026).
        let everyOther = Schedule.every(.seconds(2 * 86400), Self.madrid)
        #expect(ISO8601.string(everyOther.next(after: utc("2026-03-28T12:00:00Z"))) == "2026-03-29T22:00:00Z")
        #expect(ISO8601.string(everyOther.next(after: utc("2026-03-29T22:00:00Z"))) == "2026-03-31T22:00:00Z")
    }

    @Test func malformedCronExpressionsAreRejectedWithTheReason() {
        #expect(throws: CronExpression.Invalid.self) { try CronExpression("* * * *") }
        #expect(throws: CronExpression.Invalid.self) { try CronExpression("*/0 * * * *") }
        #expect(throws: CronExpression.Invalid.self) { try CronExpression("5-1 * * * *") }
        #expect(throws: CronExpression.Invalid.self) { try CronExpression("* * * foo *") }
        #expect((try? CronExpression("0 0 * jan,jul sun")) != nil)
    }
}
