import Foundation

/// `forecast.solar`: the production of PV systems from a weather forecast's cloud cover,
/// temperature and wind, through the solar model, corrected by what they really produced.
struct ForecastSolarNode: TransformNode {
    enum Key {
        static let supplies = OptionKey<[String]?>(
            "supplies", doc: "Supplies whose PV system is declared on their record (`pv` on `PUT /api/v1/supplies/{cups}`); default: every supply of the tenant that has one.")
        static let pv = OptionKey<JSONValue?>(
            "pv", .any, doc: "A PV system given here instead: `{kwp, latitude, longitude, tilt, azimuth, losses, inverter_kw, altitude}` (needs `series`).")
        static let series = OptionKey<String?>("series", doc: "The series of the production forecast of `pv`.", example: "device:pv-roof")
        static let resolution = OptionKey<String>("resolution", .enumeration(["PT1H", "PT15M"]), default: "PT1H", doc: "Hours or quarter-hours.")
        static let learn = OptionKey<Bool>("learn", default: true, doc: "Correct the forecast per hour of the day by what the system really produced lately.")
        static let learnDays = OptionKey<Int>("learn_days", default: 30, doc: "How many recent days the correction is learned from.")
        static let withoutWeather = OptionKey<String>(
            "without_weather", .enumeration(["skip", "clear_sky"]), default: "skip",
            doc: "A message with no cloud cover (a `schedule`'s tick): nothing (`skip`), or a clear-sky forecast of the next `horizon` from now (`clear_sky`, 15 °C, 1 m/s).")
        static let horizon = OptionKey<Duration>("horizon", default: .seconds(48 * 3600), doc: "How far a clear-sky forecast reaches.")
        static let model = OptionKey<String>("model", default: "forecast.solar", doc: "The model name the forecasts are stored under (the uncorrected ones under `MODEL/raw`).")
    }

    static let spec = NodeSpec(
        type: "forecast.solar", kind: .transform,
        summary: "Forecasts PV production from a weather forecast (AEMET's hourly: cloud cover, temperature, wind) through the solar model, corrected by actual production",
        doc: """
            Takes the weather readings of the messages it receives — `cloud_cover` (%, for the hour),
            `temperature` (°C, at the hour) and `wind_speed` (m/s), as `aemet.forecast` (hourly)
            sends them — and for every hour with a cloud cover, and every PV system (the supplies'
            declared `pv`, or `pv` and `series` here), the energy (kWh) the system makes in that hour
            or its quarter-hours: series the CUPS (or `series`), quantity `generation`, quality
            `forecast`, tags `issued_at` (now) and `model`. The chain of models is in
            docs/forecasts.md (solar position, simplified Solis clear sky, Kasten–Czeplak cloud
            cover, Erbs, Hay–Davies, Faiman, PVWatts); a missing temperature counts as 15 °C, a
            missing wind as 1 m/s. AEMET's daily forecast (7 days: `cloud_cover` in windows of 6, 12
            or 24 hours, `temperature_max`/`_min`) makes one `P1D` value per whole local day, the
            sum of its hours (each with its window's cloud cover and the day's mean temperature);
            a day its windows do not cover whole is left out. With `without_weather: clear_sky`, a message without weather (a
            `schedule`'s tick) makes a clear-sky forecast of the next `horizon` — with `learn`, a
            clear sky corrected by how much the recent days really gave: a forecast that needs no
            weather service at all.

            With `learn` the forecast is corrected by what the system really produced: over the last
            `learn_days` days, per hour of the day (the system's local time; the season is that of
            the recent days), the ratio of measured `generation` to this node's uncorrected forecast
            (its latest issue made before the hour), from at least 5 hours with a forecast above 1 %
            of kWp, bounded to 0.5–2. Both go out: the corrected forecast as `model`, the
            uncorrected as `MODEL/raw` (what the next correction is learned from). The factors are
            shown in the node's status (`details.correction`). Wire it to `store.forecasts`.
            """,
        options: [
            Key.supplies.spec, Key.pv.spec, Key.series.spec, Key.resolution.spec, Key.learn.spec, Key.learnDays.spec, Key.withoutWeather.spec,
            Key.horizon.spec, Key.model.spec,
        ],
        example: """
            - id: solar
              type: forecast.solar
              pv: { kwp: 5, latitude: 40.3, longitude: -3.73, tilt: 30, azimuth: 180 }
              series: device:pv-roof
              to: [forecasts]
            """,
        check: { o in
            var problems: [OptionProblem] = []
            if let pv = o[Key.pv] {
                do { _ = try PVSystem(json: pv) } catch { problems.append(OptionProblem(option: "pv", "\(error)")) }
                if !o.has(Key.series) { problems.append(OptionProblem(option: "series", "is needed with `pv`")) }
                if o.has(Key.supplies) { problems.append(OptionProblem(option: "supplies", "give `pv` or `supplies`, not both")) }
            }
            if !(1...366).contains(o[Key.learnDays]) { problems.append(OptionProblem(option: "learn_days", "must be 1–366")) }
            return problems
        },
        make: { context in .transform(try ForecastSolarNode(context.options)) })

    let systems: [String: PVSystem]?
    let supplies: [String]?
    let seconds: Int
    let learn: Bool
    let learnDays: Int
    let model: String
    let clearSkyHours: Int?

    init(_ o: NodeOptions) throws {
        clearSkyHours = o[Key.withoutWeather] == "clear_sky" ? max(1, Int(o[Key.horizon].seconds / 3600)) : nil
        if let pv = o[Key.pv], let series = o[Key.series] {
            do { systems = [series: try PVSystem(json: pv)] } catch { throw PermanentError("forecast.solar: \(error)") }
        } else {
            systems = nil
        }
        supplies = o[Key.supplies]
        seconds = o[Key.resolution] == "PT15M" ? 900 : 3600
        learn = o[Key.learn]
        learnDays = o[Key.learnDays]
        model = o[Key.model]
    }

    /// The weather of each hour: from hourly readings, or from the windows of a daily forecast
    /// (6, 12 or 24 hours; they never overlap) spread over their hours, the temperature then the
    /// day's mean of maximum and minimum.
    static func weather(_ readings: [Reading]) -> (hours: [Date: PVSystem.Weather], daily: Bool) {
        var cloud: [Date: Double] = [:], temperature: [Date: Double] = [:], wind: [Date: Double] = [:]
        // The days' maximum and minimum by the day's interval (the municipality's own midnight).
        var dayMax: [Range<Date>: Double] = [:], dayMin: [Range<Date>: Double] = [:]
        var daily = false
        for r in readings {
            let seconds = ISODuration.seconds(r.resolution) ?? 0
            // A window's value holds for each of its hours.
            let hours = seconds > 3600 ? stride(from: 0, to: seconds, by: 3600).map { r.ts.addingTimeInterval(Double($0)) } : [r.ts]
            switch r.quantity {
            case "cloud_cover":
                if seconds > 3600 { daily = true }
                for h in hours { cloud[h] = r.value / 100 }
            case "temperature": temperature[r.ts] = r.value
            case "temperature_max": dayMax[r.ts..<r.end] = r.value
            case "temperature_min": dayMin[r.ts..<r.end] = r.value
            case "wind_speed": for h in hours { wind[h] = r.value }
            default: break
            }
        }
        var out: [Date: PVSystem.Weather] = [:]
        for (ts, c) in cloud {
            let day = dayMax.keys.first { $0.contains(ts) }
            let dayMean = day.flatMap { d in dayMax[d].flatMap { max in dayMin[d].map { (max + $0) / 2 } } }
            out[ts] = PVSystem.Weather(
                cloud: c, temperature: temperature[ts] ?? temperature[ts.addingTimeInterval(3600)] ?? dayMean ?? 15, wind: wind[ts] ?? 1)
        }
        return (out, daily)
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var (hours, daily) = Self.weather(message.readings)
        if hours.isEmpty, let clearSkyHours {
            let first = (context.clock.now().timeIntervalSince1970 / 3600).rounded(.down) * 3600
            for h in 0..<clearSkyHours {
                hours[Date(timeIntervalSince1970: first + Double(h) * 3600)] = PVSystem.Weather(cloud: 0, temperature: 15, wind: 1)
            }
        }
        guard !hours.isEmpty else { return [] }
        var systems = self.systems ?? [:]
        if self.systems == nil { systems = try await declared(context) }
        let now = context.clock.now()
        let issued = ISO8601.string(now)
        var out: [Reading] = []
        var details: [String: JSONValue] = [:]
        for (series, system) in systems.sorted(by: { $0.key < $1.key }) {
            let factors = learn ? try await correction(series, system, now: now, context) : [:]
            if learn { details[series] = .object(Dictionary(uniqueKeysWithValues: factors.map { (String(format: "%02d", $0.key), JSONValue.number(($0.value * 1000).rounded() / 1000)) })) }
            let zone = system.zone
            func reading(_ ts: Date, _ resolution: String, _ value: Double, _ name: String) -> Reading {
                Reading(
                    tenant: context.tenant, series: series, quantity: "generation", ts: ts, resolution: resolution,
                    value: value, unit: "kWh", quality: .forecast, source: context.readingSource,
                    tags: ["issued_at": issued, "model": name])
            }
            if daily {
                // Whole local days: the sum of their hours.
                var days: [LocalDay: (raw: Double, corrected: Double, hours: Int)] = [:]
                for (hour, weather) in hours {
                    let raw = system.energy(from: hour, seconds: 3600, weather)
                    let factor = factors[LocalDay.calendar(zone).component(.hour, from: hour)] ?? 1
                    let day = LocalDay(containing: hour, in: zone)
                    let d = days[day] ?? (0, 0, 0)
                    days[day] = (d.raw + raw, d.corrected + raw * factor, d.hours + 1)
                }
                for (day, d) in days.sorted(by: { $0.key < $1.key }) {
                    let expected = Int(day.end(in: zone).timeIntervalSince(day.start(in: zone)) / 3600)
                    guard d.hours == expected else { continue }
                    out.append(reading(day.start(in: zone), "P1D", d.corrected, model))
                    if learn { out.append(reading(day.start(in: zone), "P1D", d.raw, model + "/raw")) }
                }
                continue
            }
            for (hour, weather) in hours.sorted(by: { $0.key < $1.key }) {
                for start in stride(from: 0, to: 3600, by: seconds) {
                    let ts = hour.addingTimeInterval(Double(start))
                    let raw = system.energy(from: ts, seconds: seconds, weather)
                    let resolution = ISODuration.text(seconds: seconds)
                    let hourOfDay = LocalDay.calendar(zone).component(.hour, from: ts)
                    out.append(reading(ts, resolution, raw * (factors[hourOfDay] ?? 1), model))
                    if learn { out.append(reading(ts, resolution, raw, model + "/raw")) }
                }
            }
        }
        if learn { context.status?.report(["correction": .object(details)]) }
        return out.isEmpty ? [] : [.out(Message(readings: out))]
    }

    /// The tenant's supplies with a PV system (those of `supplies`, if given).
    func declared(_ context: NodeContext) async throws -> [String: PVSystem] {
        var found: [String: PVSystem] = [:]
        for s in try await context.store.supplies(tenant: context.tenant) {
            guard let pv = s.pv, supplies?.contains(s.cups) ?? true else { continue }
            found[s.cups] = pv
        }
        if let missing = supplies?.first(where: { found[$0] == nil }) {
            throw PermanentError("forecast.solar: supply \(missing) has no PV system declared (PUT /api/v1/supplies/{cups} with \"pv\")")
        }
        return found
    }

    /// Per local hour of the day, measured over forecast production of the last `learnDays` days,
    /// bounded to 0.5–2; hours with fewer than 5 usable pairs are left out (factor 1).
    func correction(_ series: String, _ system: PVSystem, now: Date, _ context: NodeContext) async throws -> [Int: Double] {
        let from = now.addingTimeInterval(-Double(learnDays) * 86_400)
        let issues = try await context.store.forecasts(ForecastQuery(tenant: context.tenant, series: [series], quantity: "generation", from: from, to: now, vintage: nil))
        var forecast: [Date: Forecast] = [:]
        for f in issues where f.model == model + "/raw" && f.issuedAt <= f.reading.ts {
            if forecast[f.reading.ts].map({ f.issuedAt > $0.issuedAt }) ?? true { forecast[f.reading.ts] = f }
        }
        guard !forecast.isEmpty else { return [:] }
        let measured = try await context.store.readings(ReadingQuery(tenant: context.tenant, series: [series], quantity: "generation", from: from, to: now))
        var pairs: [(ts: Date, hours: Double, forecast: Double, actual: Double)] = []
        for stored in measured where stored.reading.quality != .forecast {
            let r = stored.reading
            guard let f = forecast[r.ts], f.reading.resolution == r.resolution else { continue }
            pairs.append((r.ts, Double(ISODuration.seconds(r.resolution) ?? 3600) / 3600, f.reading.value, r.value))
        }
        return Self.factors(pairs, system: system)
    }

    /// Per local hour of the day, measured over forecast — from at least 5 intervals whose forecast
    /// is above 1 % of kWp — bounded to 0.5–2.
    static func factors(_ pairs: [(ts: Date, hours: Double, forecast: Double, actual: Double)], system: PVSystem) -> [Int: Double] {
        let calendar = LocalDay.calendar(system.zone)
        var sums: [Int: (forecast: Double, actual: Double, n: Int)] = [:]
        for p in pairs where p.forecast > 0.01 * system.kwp * p.hours {
            let h = calendar.component(.hour, from: p.ts)
            let s = sums[h] ?? (0, 0, 0)
            sums[h] = (s.forecast + p.forecast, s.actual + p.actual, s.n + 1)
        }
        var factors: [Int: Double] = [:]
        for (h, s) in sums where s.n >= 5 && s.forecast > 0 { factors[h] = min(2, max(0.5, s.actual / s.forecast)) }
        return factors
    }
}

extension PVSystem {
    /// The local time of the system: the Canary Islands' west of 12° W, else the Peninsula's.
    var zone: TimeZone { longitude < -12 ? TimeZone(identifier: "Atlantic/Canary")! : LocalDay.madrid }
}
