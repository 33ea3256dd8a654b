@testable import EnchufeCore
import Foundation
import Testing

@Suite struct InstantFormatTests {
    let madrid = TimeZone(identifier: "Europe/Madrid")!
    let canary = TimeZone(identifier: "Atlantic/Canary")!

    func utc(_ text: String) -> Date { ISO8601.date(text)! }

    @Test func epochSecondsAndMilliseconds() throws {
        #expect(try InstantFormat.epochSeconds.instant(1_735_689_600, zone: madrid) == utc("2025-01-01T00:00:00Z"))
        #expect(try InstantFormat.epochMilliseconds.instant(1_735_689_600_500, zone: madrid) == utc("2025-01-01T00:00:00.500Z"))
        #expect(try InstantFormat.auto.instant(1_735_689_600_000, zone: madrid) == utc("2025-01-01T00:00:00Z"))
        #expect(try InstantFormat.auto.instant("1735689600", zone: madrid) == utc("2025-01-01T00:00:00Z"))
    }

    @Test func isoTimesNeedAnOffset() throws {
        #expect(try InstantFormat.iso8601.instant("2025-10-26T02:00:00+01:00", zone: madrid) == utc("2025-10-26T01:00:00Z"))
        #expect(try InstantFormat.iso8601.instant("2025-10-26T02:00:00-03:00", zone: madrid) == utc("2025-10-26T05:00:00Z"))
        #expect(throws: TemplateError.self) { try InstantFormat.iso8601.instant("2025-10-26T02:00:00", zone: madrid) }
    }

    @Test func localTimesAreReadInTheirZone() throws {
        #expect(try InstantFormat.local.instant("2025-01-15 10:00", zone: madrid) == utc("2025-01-15T09:00:00Z"))
        #expect(try InstantFormat.local.instant("2025-01-15 10:00", zone: canary) == utc("2025-01-15T10:00:00Z"))
        #expect(try InstantFormat.local.instant("15/01/2025 10:00:30", zone: madrid) == utc("2025-01-15T09:00:30Z"))
        #expect(try InstantFormat.local.instant("2025-07-01", zone: madrid) == utc("2025-06-30T22:00:00Z"))
        #expect(try InstantFormat.auto.instant("2025-07-01T12:00", zone: madrid) == utc("2025-07-01T10:00:00Z"))
    }

    @Test func aLocalTimeSkippedInSpringIsAnError() {
        let error = #expect(throws: TemplateError.self) { try InstantFormat.local.instant("2025-03-30 02:30", zone: madrid) }
        #expect(error?.description.contains("does not exist in Europe/Madrid") == true)
        #expect(throws: TemplateError.self) { try InstantFormat.local.instant("2025-02-30 10:00", zone: madrid) }
    }

    /// The outside audit's crash: `"ts": 1e300` (and its cousins) reached a trapping Int64 conversion.
    @Test func timesOutside1970To2100AreErrorsNotCrashes() throws {
        let absurd: [JSONValue] = [1e300, -1e300, 1e17, -1, "nan", "inf", "-inf", "1e300", "NaN", "2100-01-01T00:00:00Z",
            "1582-10-10T00:00:00Z", "1969-12-31 23:00", "99999999999999999999-01-01 00:00", "2025-99999999999999999999-01"]
        for value in absurd {
            for format in InstantFormat.allCases {
                #expect(throws: TemplateError.self, "\(value) \(format)") { try format.instant(value, zone: madrid) }
            }
        }
        #expect(throws: TemplateError.self) { try InstantFormat.epochSeconds.instant(4_102_444_800, zone: madrid) }
        #expect(try InstantFormat.epochSeconds.instant(0, zone: madrid) == Date(timeIntervalSince1970: 0))
        #expect(try InstantFormat.epochSeconds.instant(4_102_444_799, zone: madrid) == Date(timeIntervalSince1970: 4_102_444_799))
    }

    @Test func aLocalTimeRepeatedInAutumnIsItsFirstOccurrence() throws {
        #expect(try InstantFormat.local.instant("2025-10-26 02:30", zone: madrid) == utc("2025-10-26T00:30:00Z"))
        #expect(try InstantFormat.local.instant("2025-10-26 03:30", zone: madrid) == utc("2025-10-26T02:30:00Z"))
        #expect(try InstantFormat.local.instant("2025-10-26 01:30", zone: canary) == utc("2025-10-26T00:30:00Z"))
    }
}

@Suite struct ISO8601Tests {
    @Test func theFastFormAgreesWithFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        let samples = [-62_135_596_800.0, -1, 0, 951_782_400, 1_709_164_800, 4_107_542_400, 253_402_300_799]
            + (0..<2000).map { _ in Double(Int64.random(in: -2_000_000_000...5_000_000_000, using: &generator)) }
        for seconds in samples {
            let date = Date(timeIntervalSince1970: seconds)
            let text = ISO8601.string(date)
            #expect(text == date.formatted(.iso8601), "\(seconds)")
            #expect(ISO8601.date(text) == (ReadingLimits.instants.contains(date) ? date : nil), "\(text)")
        }
    }

    /// Milliseconds too (every MQTT message's arrival time): written and read by hand, in the form
    /// Foundation reads, at the nearest millisecond (Foundation's own formatter truncates the
    /// binary fraction: 999 ms came out as `.998`).
    @Test func theFastFormWithMillisecondsAgreesWithFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        let samples = [-1, 1, 999, 1001, 951_782_400_123, 1_709_164_800_500, 4_107_542_399_999]
            + (0..<2000).map { _ in Int64.random(in: -2_000_000_000_000...5_000_000_000_000, using: &generator) }
        for ms in samples where ms % 1000 != 0 {
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let text = ISO8601.string(date)
            #expect(text.count == 24 && text.hasSuffix("Z"), "\(text)")
            #expect(abs(try Date(text, strategy: withFraction).timeIntervalSince(date)) < 0.0005, "\(ms): \(text)")
            let read = ISO8601.date(text).map { ($0.timeIntervalSince1970 * 1000).rounded() }
            #expect(read == (ReadingLimits.instants.contains(date) ? Double(ms) : nil), "\(text)")
        }
        #expect(ISO8601.string(Date(timeIntervalSince1970: 1_709_164_800.1234)) == "2024-02-29T00:00:00.123Z")
        #expect(ISO8601.string(Date(timeIntervalSince1970: 1_709_164_800.9996)) == "2024-02-29T00:00:01Z")
        #expect(ISO8601.string(Date(timeIntervalSince1970: -0.0004)) == "1970-01-01T00:00:00Z")
    }

    @Test func instantsOutside1970To2100AndImpossibleOffsetsAreNotRead() {
        for text in ["1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "1582-10-10T00:00:00Z", "+293506-01-01T00:00:00Z", "1582-10-10",
            "2025-10-26T02:00:00+99:99", "2025-10-26T02:00:00+19:00", "2025-10-26T02:00:00-01:60", String(repeating: "9", count: 5_000_000)]
        {
            #expect(ISO8601.date(text) == nil, "\(text.prefix(40))")
        }
        #expect(ISO8601.date("1970-01-01T00:00:00Z") == Date(timeIntervalSince1970: 0))
        #expect(ISO8601.date("2099-12-31T23:59:59Z") == Date(timeIntervalSince1970: 4_102_444_799))
        #expect(ISO8601.date("2025-10-26T02:00:00-05:30") == Date(timeIntervalSince1970: 1_761_463_800))
    }

    /// Printing an instant nobody should have let in (1e300 seconds) must not trap either.
    @Test func anyInstantPrintsWithoutTrapping() {
        for seconds in [1e300, -1e300, 1e17, -1e17, .infinity, -.infinity, .nan] {
            #expect(!ISO8601.string(Date(timeIntervalSince1970: seconds)).isEmpty)
            _ = Date(timeIntervalSince1970: seconds).epochMilliseconds
        }
    }

    @Test func otherFormsStillParse() {
        #expect(ISO8601.date("2025-10-26T02:00:00+02:00") == Date(timeIntervalSince1970: 1_761_436_800))
        #expect(ISO8601.date("2025-10-26T00:00:00.250Z") == Date(timeIntervalSince1970: 1_761_436_800.25))
        #expect(ISO8601.date("2025-10-26") == Date(timeIntervalSince1970: 1_761_436_800))
        #expect(ISO8601.date("2025-13-01T00:00:00Z") == nil)
    }
}
