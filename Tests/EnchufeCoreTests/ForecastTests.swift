import Foundation
import Logging
import Testing
import TestSupport

@testable import EnchufeCore

/// Forecasts: stored by `store.forecasts`, served by `/api/v1/forecasts`, and their accuracy
/// against hand-computed figures.
@Suite struct ForecastTests {
    static let day = ISO8601.date("2026-06-10T00:00:00Z")!  // a Wednesday
    static let series = "ES0021000000000001AB"

    static func at(_ hours: Double, dayOffset: Double = 0) -> Date { day.addingTimeInterval(dayOffset * 86_400 + hours * 3600) }

    static func reading(_ hour: Double, _ value: Double, dayOffset: Double = 0, tenant: String = "t1", quality: Quality = .measured) -> Reading {
        Reading(tenant: tenant, series: series, quantity: "generation", ts: at(hour, dayOffset: dayOffset), resolution: "PT1H", value: value, unit: "kWh", quality: quality)
    }

    static func forecast(_ hour: Double, _ value: Double, issued: Date, model: String = "m") -> Forecast {
        Forecast(reading(hour, value, quality: .forecast), issuedAt: issued, model: model)
    }

    /// Measured 10:00–13:00 UTC on the day (2, 4, 6, 0) and the day before (1, 4, 8, 0).
    static let measured = zip([10.0, 11, 12, 13], [2.0, 4, 6, 0]).map { reading($0, $1) }
        + zip([10.0, 11, 12, 13], [1.0, 4, 8, 0]).map { reading($0, $1, dayOffset: -1) }

    /// Issued at 08:00 for 10:00–13:00 (2.5, 4, 5.5, 0.5); the day before at 10:00 for 10:00 (4);
    /// after the interval began (not a forecast); for 14:00 (nothing measured).
    static let forecasts = zip([10.0, 11, 12, 13], [2.5, 4, 5.5, 0.5]).map { forecast($0, $1, issued: at(8)) } + [
        forecast(10, 4, issued: at(10, dayOffset: -1)), forecast(10, 9, issued: at(10.5)), forecast(14, 1, issued: at(8)),
    ]

    @Test func theFiguresAreThoseWorkedOutByHand() throws {
        let figures = try #require(ForecastAccuracy.figures(Self.forecasts, measured: Self.measured, baseline: .dayBefore)["m"])
        #expect(figures.map(\.bucket) == ["0-6h", "day-ahead"])
        let near = figures[0]
        // Errors +0.5, 0, −0.5, +0.5.
        #expect(near.n == 4 && near.mae == 0.375 && near.bias == 0.125)
        #expect(abs(near.rmse - 0.1875.squareRoot()) < 1e-12)
        #expect(near.nmae == 12.5, "MAE over the mean measured, 3 kWh")
        // The day before's values as forecasts: errors 1, 0, 2, 0 → 0.75; skill 1 − 0.375 / 0.75.
        #expect(near.naiveMAE == 0.75 && near.skill == 0.5 && near.naiveN == 4)
        let dayAhead = figures[1]
        #expect(dayAhead.n == 1 && dayAhead.mae == 2 && dayAhead.rmse == 2 && dayAhead.bias == 2 && dayAhead.nmae == 100)
        #expect(dayAhead.skill == -1, "worse than the day before's value (error 1)")

        let kwp = try #require(ForecastAccuracy.figures(Self.forecasts, measured: Self.measured, baseline: .dayBefore, kwp: [Self.series: 5])["m"])
        #expect(kwp[0].nmae == 7.5, "0.375 kWh in an hour of a 5 kWp system")
    }

    @Test func theNaiveForecastsTakeTheirValuesFromTheRightLocalTime() {
        let madrid = LocalDay.madrid
        func local(_ text: String) -> Date { try! InstantFormat.local.instant(.string(text), zone: madrid) }
        let tuesday = local("2026-06-09T20:00:00"), monday = local("2026-06-08T20:00:00"), saturday = local("2026-06-13T20:00:00")
        #expect(ForecastAccuracy.Baseline.price.source(of: tuesday) == local("2026-06-08T20:00:00"))
        #expect(ForecastAccuracy.Baseline.price.source(of: monday) == local("2026-06-01T20:00:00"))
        #expect(ForecastAccuracy.Baseline.price.source(of: saturday) == local("2026-06-06T20:00:00"))
        #expect(ForecastAccuracy.Baseline.weekBefore.source(of: tuesday) == local("2026-06-02T20:00:00"))
        // The day after clocks go forward: 02:30 did not exist the day before.
        #expect(ForecastAccuracy.Baseline.dayBefore.source(of: local("2026-03-30T02:30:00")) == nil)
        // The day clocks go back: its 12:00 is 25 hours after 12:00 the day before.
        let noon = local("2026-10-25T12:00:00")
        #expect(ForecastAccuracy.Baseline.dayBefore.source(of: noon) == noon.addingTimeInterval(-25 * 3600))
        #expect(ForecastAccuracy.Baseline.of("consumption") == .weekBefore && ForecastAccuracy.Baseline.of("generation") == .dayBefore)
    }

    func context(_ store: any Store, now: Date) -> NodeContext {
        NodeContext(
            flow: "solar", node: "forecasts", tenant: "t1", store: store, clock: VirtualClock(start: now),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    @Test func theSinkTakesIssueAndModelFromTheReadingTheMessageOrNowAndForecastsSurviveARestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-forecasts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("hub.sqlite").path
        var store: SQLiteStore? = try SQLiteStore(path: path)
        try await store!.migrate()
        let node = StoreForecastsNode(batching: Batching(size: 10, flushInterval: .seconds(1)), model: nil, retention: 400 * 86_400)
        var tagged = Self.reading(10, 3, quality: .measured)
        tagged.tags = ["issued_at": "2026-06-09T18:00:00Z", "model": "pvwatts"]
        var fromMessage = Message(readings: [Self.reading(11, 4)])
        fromMessage.attributes = ["issued_at": "2026-06-09T19:00:00+01:00", "model": "clear-sky"]
        var plain = Self.reading(12, 5)
        plain.source = "solar/pv"
        try await node.write([Message(readings: [tagged]), fromMessage, Message(readings: [plain])], context(store!, now: Self.at(6)))
        try await store!.close()
        store = nil

        let reopened = try SQLiteStore(path: path)
        try await reopened.migrate()
        let kept = try await reopened.forecasts(ForecastQuery(tenant: "t1", from: Self.day, to: Self.at(24)))
        #expect(kept.map(\.model) == ["pvwatts", "clear-sky", "solar/pv"])
        #expect(kept.map(\.issuedAt) == [ISO8601.date("2026-06-09T18:00:00Z")!, ISO8601.date("2026-06-09T18:00:00Z")!, Self.at(6)])
        #expect(kept.allSatisfy { $0.reading.quality == .forecast })
        #expect(try await reopened.readings(ReadingQuery(tenant: "t1")).isEmpty, "nothing among the readings")

        var bad = Self.reading(13, 1)
        bad.tags = ["issued_at": "yesterday"]
        await #expect(throws: PermanentError.self) { try await node.write([Message(readings: [bad])], self.context(reopened, now: Self.at(6))) }
        await #expect(throws: PermanentError.self) { try await node.write([Message(payload: ["x": 1])], self.context(reopened, now: Self.at(6))) }
    }

    @Test func theRoutesServeTheLatestIssueOrTheOneCurrentThenAndTheAccuracyPerHorizon() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        _ = try await store.upsert(Self.measured + [Self.reading(10, 50, tenant: "t2")])
        try await store.saveForecasts(Self.forecasts + [Forecast(Self.reading(10, 70, tenant: "t2", quality: .forecast), issuedAt: Self.at(8), model: "m")])
        let (_, reader) = try await APIKeys.create(tenant: "t1", scopes: ["read"], name: "app", at: Date(), store: store)
        let (_, other) = try await APIKeys.create(tenant: "t2", scopes: ["read"], name: "other", at: Date(), store: store)
        let server = try await APIServer.start(store: store)
        defer { server.stop() }
        let range = "series=\(Self.series)&quantity=generation&from=2026-06-10T00:00:00Z&to=2026-06-11T00:00:00Z"

        let latest = try JSONValue.parse(try await server.get("/api/v1/forecasts?\(range)", key: reader).body)["forecasts"]?.arrayValue ?? []
        #expect(latest.map { $0["value"]?.doubleValue } == [9, 4, 5.5, 0.5, 1], "10:00's latest issue is the one made at 10:30")
        let before = try JSONValue.parse(try await server.get("/api/v1/forecasts?\(range)&issued=2026-06-10T09:00:00Z", key: reader).body)["forecasts"]?.arrayValue ?? []
        #expect(before.first?["value"]?.doubleValue == 2.5 && before.first?["issued_at"]?.stringValue == "2026-06-10T08:00:00Z")
        let theirs = try JSONValue.parse(try await server.get("/api/v1/forecasts?from=2026-06-10T00:00:00Z&to=2026-06-11T00:00:00Z", key: other).body)
        #expect(theirs["forecasts"]?.arrayValue?.map { $0["value"]?.doubleValue } == [70], "another tenant sees its own only")

        let accuracy = try JSONValue.parse(try await server.get("/api/v1/forecasts/accuracy?\(range)", key: reader).body)
        let buckets = accuracy["accuracy"]?.arrayValue?.first?["buckets"]?.arrayValue ?? []
        #expect(buckets.map { $0["horizon"]?.stringValue } == ["0-6h", "day-ahead"])
        #expect(buckets.first?["mae"]?.doubleValue == 0.375 && buckets.first?["skill"]?.doubleValue == 0.5 && buckets.first?["nmae_percent"]?.doubleValue == 12.5)
        #expect(accuracy["baseline"]?.stringValue?.hasPrefix("persistence") == true)

        for (query, says) in [
            ("series=x&from=2026-06-10&to=2026-06-11", "quantity is required"),
            ("quantity=generation&from=2026-06-10", "from and to are required"),
            ("quantity=generation&from=2026-06-10&to=2028-06-10", "at most 400 days"),
        ] {
            let answer = try await server.get("/api/v1/forecasts/accuracy?\(query)", key: reader)
            #expect(answer.status == 400 && answer.body.contains(says), "\(query): \(answer.body)")
        }
        let badIssue = try await server.get("/api/v1/forecasts?\(range)&issued=soon", key: reader)
        #expect(badIssue.status == 400 && badIssue.body.contains("issued must be"))
        #expect(try await server.get("/api/v1/forecasts?\(range)", key: nil).status == 401)
    }

    // MARK: forecast.solar

    static let roof: JSONValue = ["kwp": 5, "latitude": 40.4, "longitude": -3.7, "tilt": 30, "azimuth": 180]

    /// AEMET-style hourly readings from 10:00 UTC on the day: cloud cover (%), temperature, wind.
    static func weather(_ clouds: [Double]) -> [Reading] {
        clouds.enumerated().flatMap { i, c -> [Reading] in
            let ts = at(10 + Double(i))
            func r(_ q: String, _ v: Double, _ res: String, _ unit: String) -> Reading {
                Reading(tenant: "t1", series: "aemet:28065", quantity: q, ts: ts, resolution: res, value: v, unit: unit, quality: .forecast)
            }
            return [r("cloud_cover", c, "PT1H", "%"), r("temperature", 24, "PT0S", "degC"), r("wind_speed", 3, "PT1H", "m/s"), r("precipitation", 0, "PT1H", "mm")]
        }
    }

    @Test func theProductionOfEachHourIsTheSolarModelsOnTheHoursWeatherIssuedNow() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let node = try ForecastSolarNode(NodeOptions(values: ["pv": Self.roof, "series": "device:roof"]))
        let now = Self.at(6)
        let out = try await node.process(Message(readings: Self.weather([0, 50, 100])), context(store, now: now)).first?.message.readings ?? []
        #expect(out.count == 6, "three hours, corrected and uncorrected")
        let system = try PVSystem(json: Self.roof)
        let corrected = out.filter { $0.tags["model"] == "forecast.solar" }
        for (i, cloud) in [0.0, 0.5, 1].enumerated() {
            let expected = system.energy(from: Self.at(10 + Double(i)), seconds: 3600, PVSystem.Weather(cloud: cloud, temperature: 24, wind: 3))
            #expect(corrected[i].value == expected && corrected[i].ts == Self.at(10 + Double(i)))
        }
        #expect(corrected[2].value < corrected[1].value && corrected[2].value < corrected[0].value / 2, "overcast at noon makes less than half of a clear morning hour")
        #expect(out.allSatisfy { $0.series == "device:roof" && $0.quantity == "generation" && $0.unit == "kWh" && $0.quality == .forecast && $0.tags["issued_at"] == "2026-06-10T06:00:00Z" })
        #expect(out.filter { $0.tags["model"] == "forecast.solar/raw" }.map(\.value) == corrected.map(\.value), "nothing learned yet: the same")

        let quarters = try ForecastSolarNode(NodeOptions(values: ["pv": Self.roof, "series": "device:roof", "resolution": "PT15M", "learn": false]))
        let q = try await quarters.process(Message(readings: Self.weather([0])), context(store, now: now)).first?.message.readings ?? []
        #expect(q.count == 4 && q.allSatisfy { $0.resolution == "PT15M" })
        #expect(abs(q.map(\.value).reduce(0, +) - corrected[0].value) < 0.01, "four quarter-hours make the hour")
        #expect(try await node.process(Message(readings: [Self.reading(10, 1)]), context(store, now: now)).isEmpty, "no weather, nothing")
    }

    @Test func aDailyForecastsWindowsMakeAWholeDaysProduction() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let madrid = LocalDay.madrid
        let day1 = LocalDay(year: 2026, month: 6, day: 11), day2 = LocalDay(year: 2026, month: 6, day: 12)
        func r(_ q: String, _ ts: Date, _ res: String, _ v: Double) -> Reading {
            Reading(tenant: "t1", series: "aemet:28065", quantity: q, ts: ts, resolution: res, value: v, unit: "", quality: .forecast)
        }
        var readings: [Reading] = []
        for (i, cloud) in [0.0, 50, 100, 0].enumerated() { readings.append(r("cloud_cover", day1.start(in: madrid).addingTimeInterval(Double(i) * 6 * 3600), "PT6H", cloud)) }
        readings.append(r("cloud_cover", day2.start(in: madrid), "P1D", 25))
        for day in [day1, day2] {
            readings += [r("temperature_max", day.start(in: madrid), "P1D", 30), r("temperature_min", day.start(in: madrid), "P1D", 16)]
        }
        // Half a day's windows only: not a whole day, left out.
        readings.append(r("cloud_cover", LocalDay(year: 2026, month: 6, day: 13).start(in: madrid), "PT12H", 0))
        let node = try ForecastSolarNode(NodeOptions(values: ["pv": Self.roof, "series": "device:roof", "learn": false]))
        let out = try await node.process(Message(readings: readings), context(store, now: Self.at(6))).first?.message.readings ?? []
        #expect(out.map(\.ts) == [day1.start(in: madrid), day2.start(in: madrid)] && out.allSatisfy { $0.resolution == "P1D" })
        let system = try PVSystem(json: Self.roof)
        var expected = 0.0
        for h in 0..<24 {
            let cloud = [0.0, 0.5, 1, 0][h / 6]
            expected += system.energy(from: day1.start(in: madrid).addingTimeInterval(Double(h) * 3600), seconds: 3600, .init(cloud: cloud, temperature: 23, wind: 1))
        }
        #expect(abs(out[0].value - expected) < 1e-9)
        #expect(out[1].value > out[0].value, "a quarter-cloudy day makes more than one with an overcast afternoon")
    }

    @Test func aForecastThatRanHighIsCorrectedPerHourOfTheDayWithinBounds() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        // Ten past days: the uncorrected forecast said 4 kWh at 10:00 and 11:00 UTC (12 and 13 in
        // Madrid); the roof made 2 at 10:00 and 12 at 11:00 (beyond the bound of 2).
        var history: [Forecast] = [], measured: [Reading] = []
        for day in 1...10 {
            for (hour, actual) in [(10.0, 2.0), (11.0, 12.0)] {
                var r = Self.reading(hour, 4, dayOffset: -Double(day), quality: .forecast)
                r.series = "device:roof"
                history.append(Forecast(r, issuedAt: Self.at(hour - 20, dayOffset: -Double(day)), model: "forecast.solar/raw"))
                var m = Self.reading(hour, actual, dayOffset: -Double(day))
                m.series = "device:roof"
                measured.append(m)
            }
        }
        try await store.saveForecasts(history)
        _ = try await store.upsert(measured)
        let node = try ForecastSolarNode(NodeOptions(values: ["pv": Self.roof, "series": "device:roof"]))
        var ctx = context(store, now: Self.at(6))
        let status = NodeStatus()
        ctx.status = status
        let out = try await node.process(Message(readings: Self.weather([0, 0, 0])), ctx).first?.message.readings ?? []
        func value(_ hour: Double, _ model: String) -> Double? { out.first { $0.ts == Self.at(hour) && $0.tags["model"] == model }?.value }
        #expect(value(10, "forecast.solar") == value(10, "forecast.solar/raw")! * 0.5)
        #expect(value(11, "forecast.solar") == value(11, "forecast.solar/raw")! * 2, "3 times is bounded to 2")
        #expect(value(12, "forecast.solar") == value(12, "forecast.solar/raw"), "no history for 14:00 in Madrid")
        #expect(status.snapshot.details == ["correction": ["device:roof": ["12": 0.5, "13": 2]]])
    }

    @Test func theSuppliesPVSystemsAreForecastUnderTheirCUPS() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        try await store.saveSupply(SupplyPoint(tenant: "t1", cups: Self.series, pv: try PVSystem(json: Self.roof)))
        try await store.saveSupply(SupplyPoint(tenant: "t1", cups: "ES0021000000000002ZZ"))
        let all = try ForecastSolarNode(NodeOptions(values: ["learn": false]))
        let out = try await all.process(Message(readings: Self.weather([25])), context(store, now: Self.at(6))).first?.message.readings ?? []
        #expect(out.map(\.series) == [Self.series], "only the supply with a PV system")
        let named = try ForecastSolarNode(NodeOptions(values: ["supplies": ["ES0021000000000002ZZ"]]))
        await #expect(throws: PermanentError.self) { try await named.process(Message(readings: Self.weather([25])), self.context(store, now: Self.at(6))) }
        #expect(ForecastSolarNode.spec.check?(NodeOptions(values: ["pv": ["kwp": 5]])).compactMap(\.option).sorted() == ["pv", "series"])
    }

    // MARK: forecast.consumption

    @Test func withoutFourWeeksOfHistoryTheStandardDayIsScaledToWhatIsKnown() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        // Ten days of 12 kWh a day, hourly.
        var history: [Reading] = []
        for h in 0..<240 {
            history.append(Reading(tenant: "t1", series: Self.series, quantity: "consumption", ts: Self.at(Double(h) - 240), resolution: "PT1H", value: 0.5, unit: "kWh"))
        }
        _ = try await store.upsert(history)
        let node = ForecastConsumptionNode(NodeOptions(values: ["series": [.string(Self.series)], "horizon": "1d"]))
        let out = try await node.process(Message(), context(store, now: Self.at(-0.5))).first?.message.readings ?? []
        #expect(out.count == 24 && out.first?.ts == Self.day, "from the next whole hour, a day of hours")
        #expect(abs(out.map(\.value).reduce(0, +) - 12) < 1e-9, "the standard day holds the day's 12 kWh")
        #expect(out.allSatisfy { $0.tags["model"] == "forecast.consumption/cold-start" && $0.quality == .forecast && $0.tags["issued_at"] == "2026-06-09T23:30:00Z" })
        let evening = out.first { LocalDay.calendar(LocalDay.madrid).component(.hour, from: $0.ts) == 21 }!.value
        let night = out.first { LocalDay.calendar(LocalDay.madrid).component(.hour, from: $0.ts) == 4 }!.value
        #expect(evening > 2 * night, "the evening peak")
    }

    @Test func theProfileKeepsDayTypesApartAndTheWallClockOnDSTDays() {
        let forecaster = ConsumptionForecast()
        let madrid = LocalDay.madrid
        func local(_ text: String) -> Date { try! InstantFormat.local.instant(.string(text), zone: madrid) }
        #expect(forecaster.dayType(local("2026-10-12T10:00:00")) == .holiday, "Fiesta Nacional, a Monday")
        #expect(forecaster.dayType(local("2026-10-10T10:00:00")) == .saturday)
        #expect(forecaster.dayType(local("2026-10-11T10:00:00")) == .holiday, "a Sunday")
        #expect(forecaster.dayType(local("2026-10-13T10:00:00")) == .workday)
        // Eight weeks of hours: 1 kWh on working days, 3 on Saturdays, 2 on Sundays and holidays;
        // 19:00 local always 5 on working days.
        let start = LocalDay(year: 2026, month: 8, day: 30).start(in: madrid)
        let end = LocalDay(year: 2026, month: 10, day: 25).start(in: madrid)
        var history: [Reading] = []
        var t = start
        while t < end {
            let type = forecaster.dayType(t)
            let hour = LocalDay.calendar(madrid).component(.hour, from: t)
            let v = type == .saturday ? 3.0 : type == .holiday ? 2 : hour == 19 ? 5 : 1
            history.append(Reading(series: "s", quantity: "consumption", ts: t, resolution: "PT1H", value: v, unit: "kWh"))
            t = t.addingTimeInterval(3600)
        }
        // 25 October 2026, the Sunday clocks go back: 25 hours, each forecast as a Sunday's.
        let day = LocalDay(year: 2026, month: 10, day: 25)
        let (sunday, method) = forecaster.forecast(history: history, from: day.start(in: madrid), horizon: day.end(in: madrid).timeIntervalSince(day.start(in: madrid)), seconds: 3600)
        #expect(method == .profile && sunday.count == 25 && sunday.allSatisfy { $0.value == 2 })
        let monday = forecaster.forecast(history: history, from: day.end(in: madrid), horizon: 86_400, seconds: 3600).values
        #expect(monday.map(\.value) == (0..<24).map { $0 == 19 ? 5.0 : 1 })
    }

    // MARK: forecast.price

    /// Hourly spot and PVPC over the days before `until` (Madrid): spot 50 + hour + day number;
    /// PVPC the spot plus 100 at 19:00 on working days, 30 at other hours of working days, 20 on
    /// Saturdays, Sundays and holidays.
    static func prices(days: Int, until: LocalDay) -> [Reading] {
        let madrid = LocalDay.madrid
        var out: [Reading] = []
        for d in 1...days {
            let day = until.adding(days: -d)
            var ts = day.start(in: madrid)
            while ts < day.end(in: madrid) {
                let hour = Double(LocalDay.calendar(madrid).component(.hour, from: ts))
                let spot = 50 + hour + Double(d)
                let workday = !TariffCalendar().isAllValley(day)
                let pvpc = spot + (workday ? (hour == 19 ? 100 : 30) : 20)
                out.append(Reading(tenant: "t1", series: "ree:600:8741", quantity: "price", ts: ts, resolution: "PT1H", value: spot, unit: "EUR/MWh"))
                out.append(Reading(tenant: "t1", series: "ree:1001:8741", quantity: "price", ts: ts, resolution: "PT1H", value: pvpc, unit: "EUR/MWh"))
                ts = ts.addingTimeInterval(3600)
            }
        }
        return out
    }

    @Test func tomorrowsPVPCIsTheSpotPlusTheRecentSpreadOnceTheSpotIsOutAndTheRecentMedianBefore() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let tomorrow = LocalDay(year: 2026, month: 6, day: 10)  // a Wednesday
        _ = try await store.upsert(Self.prices(days: 21, until: tomorrow))
        let node = ForecastPriceNode(NodeOptions(values: ["spot": "ree:600:8741"]))
        let now = ISO8601.date("2026-06-09T10:00:00Z")!
        let before = try await node.process(Message(), context(store, now: now)).first?.message.readings ?? []
        #expect(before.count == 24 && before.allSatisfy { $0.tags["model"] == "forecast.price/history" && $0.series == "ree:1001:8741" && $0.quality == .forecast })
        // The last 7 working days are 1, 2, 5, 6, 7, 8 and 9 days back (3 and 4 are the weekend): the median is 6.
        let at19 = before.first { LocalDay.calendar(LocalDay.madrid).component(.hour, from: $0.ts) == 19 }
        #expect(abs((at19?.value ?? 0) - (50 + 19 + 6 + 100)) < 1e-9, "\(String(describing: at19?.value))")

        // OMIE's (here REE's spot) price for tomorrow is out: 200 + hour.
        var spot: [Reading] = []
        var ts = tomorrow.start(in: LocalDay.madrid)
        while ts < tomorrow.end(in: LocalDay.madrid) {
            let hour = Double(LocalDay.calendar(LocalDay.madrid).component(.hour, from: ts))
            spot.append(Reading(tenant: "t1", series: "ree:600:8741", quantity: "price", ts: ts, resolution: "PT1H", value: 200 + hour, unit: "EUR/MWh"))
            ts = ts.addingTimeInterval(3600)
        }
        _ = try await store.upsert(spot)
        let after = try await node.process(Message(), context(store, now: now.addingTimeInterval(4 * 3600))).first?.message.readings ?? []
        let hours = after.map { Int(LocalDay.calendar(LocalDay.madrid).component(.hour, from: $0.ts)) }
        #expect(after.allSatisfy { $0.tags["model"] == "forecast.price/spot" })
        #expect(after.map(\.value) == hours.map { 200 + Double($0) + ($0 == 19 ? 100 : 30) })
    }

    /// With eight weeks of history the expert model takes over from the median: its forecast of
    /// a working day follows the prices' daily rise that a median of past days lags behind.
    @Test func withEightWeeksOfHistoryTheExpertModelForecasts() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let tomorrow = LocalDay(year: 2026, month: 6, day: 10)  // a Wednesday
        _ = try await store.upsert(Self.prices(days: 63, until: tomorrow))
        let node = ForecastPriceNode(NodeOptions(values: [:]))
        let out = try await node.process(Message(), context(store, now: ISO8601.date("2026-06-09T10:00:00Z")!)).first?.message.readings ?? []
        #expect(out.count == 24 && out.allSatisfy { $0.tags["model"] == "forecast.price/expert" })
        // What `prices` would make for the day itself (d = 0): the median of the last seven working days is 4.5 days stale.
        for r in out {
            let hour = Double(LocalDay.calendar(LocalDay.madrid).component(.hour, from: r.ts))
            let actual = 50 + hour + (hour == 19 ? 100 : 30)
            #expect(abs(r.value - actual) < 1, "\(r.ts): \(r.value) against \(actual)")
        }
        #expect(ForecastPriceNode.spec.check?(NodeOptions(values: ["window": 7])).compactMap(\.option) == ["window"])
    }

    @Test func theDayClocksGoBackHas25ForecastHours() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let day = LocalDay(year: 2026, month: 10, day: 25)
        _ = try await store.upsert(Self.prices(days: 21, until: day))
        let node = ForecastPriceNode(NodeOptions(values: ["day": "2026-10-25"]))
        let out = try await node.process(Message(), context(store, now: ISO8601.date("2026-10-24T12:00:00Z")!)).first?.message.readings ?? []
        #expect(out.count == 25)
        // 02:00 comes twice, forecast alike from the same wall-clock slot.
        let twoOClock = out.filter { LocalDay.calendar(LocalDay.madrid).component(.hour, from: $0.ts) == 2 }
        #expect(twoOClock.count == 2 && twoOClock[0].value == twoOClock[1].value)
        #expect(ForecastPriceNode.spec.check?(NodeOptions(values: ["day": "someday"])).compactMap(\.option) == ["day"])
    }
}
