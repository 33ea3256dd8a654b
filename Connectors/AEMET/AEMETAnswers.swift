import EnchufeCore
import Foundation
import HTTPPull

/// One value as AEMET writes it: a JSON number, or a string with a decimal comma (`"13,6"`) or point
/// (`"1.4"`), `"Ip"` (inappreciable: a trace of precipitation, under 0.1 mm), `"Acum"` (a total over
/// several days, not that day's), `"Varias"` (an extreme reached several times), or nothing (`""`,
/// `"-"`, a missing field).
enum AEMETValue: Equatable {
    case number(Double)
    case trace
    case accumulated
    case several
    case none

    init(_ json: JSONValue?) {
        switch json {
        case .number(let n)?: self = .number(n)
        case .string(let s)?:
            let t = s.trimmingCharacters(in: .whitespaces)
            switch t.lowercased() {
            case "ip": self = .trace
            case "acum": self = .accumulated
            case "varias": self = .several
            case "", "-": self = .none
            default:
                if let n = Double(t.replacingOccurrences(of: ",", with: ".")) { self = .number(n) } else { self = .none }
            }
        default: self = .none
        }
    }
}

/// How AEMET products become readings; `traceMM` is what a trace (`Ip`) is stored as.
public struct AEMETReadings: Sendable {
    public var traceMM: Double
    public var source: String

    public init(traceMM: Double = 0.05, source: String = "") {
        self.traceMM = traceMM
        self.source = source
    }

    /// The number of a value; a trace of precipitation as `traceMM` when `precipitation`.
    func number(_ json: JSONValue?, precipitation: Bool = false) -> Double? {
        switch AEMETValue(json) {
        case .number(let n): return n
        case .trace where precipitation: return traceMM
        default: return nil
        }
    }

    func reading(_ series: String, _ quantity: String, _ ts: Date, _ resolution: String, _ value: Double?, _ unit: String, _ quality: Quality) -> Reading? {
        value.map { Reading(series: series, quantity: quantity, ts: ts, resolution: resolution, value: $0, unit: unit, quality: quality, source: source) }
    }

    // MARK: Conventional observations

    /// Hourly station records (`observacion/convencional/datos/estacion/{idema}`), series `aemet:IDEMA`.
    /// `fint` is the end of the observed hour, in UTC (with `+0000` in newer answers, without a zone in
    /// older ones). Values at `fint` (temperature, humidity, pressure, mean wind and its direction) are
    /// instantaneous (`PT0S` at `fint`); values over the hour (precipitation, max/min temperature,
    /// gust, sunshine) are `PT1H` readings starting an hour before `fint`. Wind in m/s; sunshine
    /// (`inso`, minutes of sun in the hour) in hours.
    public func observations(_ records: [JSONValue]) throws -> [Reading] {
        var readings: [Reading] = []
        for (i, record) in records.enumerated() {
            guard let station = record["idema"]?.templateText, !station.isEmpty else {
                throw PullError(.malformed, "observation \(i) has no idema (station id)")
            }
            guard let text = record["fint"]?.stringValue, let end = Self.utc(text) else {
                throw PullError(.malformed, "observation \(i) of \(station) has no readable fint")
            }
            let start = end.addingTimeInterval(-3600)
            let series = "aemet:\(station)"
            let q = Quality.measured
            readings += [
                reading(series, "temperature", end, "PT0S", number(record["ta"]), "degC", q),
                reading(series, "temperature_max", start, "PT1H", number(record["tamax"]), "degC", q),
                reading(series, "temperature_min", start, "PT1H", number(record["tamin"]), "degC", q),
                reading(series, "humidity", end, "PT0S", number(record["hr"]), "%", q),
                reading(series, "pressure", end, "PT0S", number(record["pres"]), "hPa", q),
                reading(series, "precipitation", start, "PT1H", number(record["prec"], precipitation: true), "mm", q),
                reading(series, "wind_speed", end, "PT0S", number(record["vv"]), "m/s", q),
                reading(series, "wind_direction", end, "PT0S", number(record["dv"]), "deg", q),
                reading(series, "wind_gust", start, "PT1H", number(record["vmax"]), "m/s", q),
                reading(series, "sunshine", start, "PT1H", number(record["inso"]).map { $0 / 60 }, "h", q),
            ].compactMap { $0 }
        }
        return readings
    }

    /// `2021-01-08T14:00:00` (UTC), `2025-04-29T22:00:00+0000`, `...Z` or `...+00:00`.
    static func utc(_ text: String) -> Date? {
        var t = text
        if t.hasSuffix("+0000") { t = String(t.dropLast(5)) + "Z" }
        if InstantFormat.hasOffset(t) { return ISO8601.date(t) }
        return ISO8601.date(t + "Z")
    }

    // MARK: Daily climatological values

    /// Daily values of a station (`valores/climatologicos/diarios/...`): all strings with decimal
    /// commas. Series `aemet:INDICATIVO`, `P1D` readings at 00:00 UTC of `fecha`. Precipitation `Ip`
    /// is a trace (`traceMM`); `Acum` (a total over several days) is left out, as are times of the
    /// extremes (`Varias` among them). Wind direction `dir` comes in tens of degrees (99 variable and
    /// 88 unknown are left out). Returns the readings and how many `Acum` days were left out.
    public func climatology(_ records: [JSONValue]) throws -> (readings: [Reading], accumulated: Int) {
        var readings: [Reading] = []
        var accumulated = 0
        for (i, record) in records.enumerated() {
            guard let station = record["indicativo"]?.templateText, !station.isEmpty else {
                throw PullError(.malformed, "daily value \(i) has no indicativo (station id)")
            }
            guard let fecha = record["fecha"]?.stringValue, let day = LocalDay(fecha) else {
                throw PullError(.malformed, "daily value \(i) of \(station) has no readable fecha")
            }
            if AEMETValue(record["prec"]) == .accumulated { accumulated += 1 }
            let ts = day.start(in: .gmt)
            let series = "aemet:\(station)"
            let q = Quality.measured
            let direction = number(record["dir"]).flatMap { $0 == 99 || $0 == 88 ? nil : $0 * 10 }
            readings += [
                reading(series, "temperature_mean", ts, "P1D", number(record["tmed"]), "degC", q),
                reading(series, "temperature_max", ts, "P1D", number(record["tmax"]), "degC", q),
                reading(series, "temperature_min", ts, "P1D", number(record["tmin"]), "degC", q),
                reading(series, "precipitation", ts, "P1D", number(record["prec"], precipitation: true), "mm", q),
                reading(series, "wind_speed", ts, "P1D", number(record["velmedia"]), "m/s", q),
                reading(series, "wind_gust", ts, "P1D", number(record["racha"]), "m/s", q),
                reading(series, "wind_direction", ts, "P1D", direction, "deg", q),
                reading(series, "sunshine", ts, "P1D", number(record["sol"]), "h", q),
                reading(series, "humidity", ts, "P1D", number(record["hrMedia"]), "%", q),
                reading(series, "humidity_max", ts, "P1D", number(record["hrMax"]), "%", q),
                reading(series, "humidity_min", ts, "P1D", number(record["hrMin"]), "%", q),
                reading(series, "pressure_max", ts, "P1D", number(record["presMax"]), "hPa", q),
                reading(series, "pressure_min", ts, "P1D", number(record["presMin"]), "hPa", q),
            ].compactMap { $0 }
        }
        return (readings, accumulated)
    }

    // MARK: Municipality forecasts

    /// The time zone of a municipality's local hours: the Canary Islands (INE provinces 35 and 38)
    /// are an hour behind the peninsula.
    public static func zone(municipality: String) -> TimeZone {
        let code = municipality.hasPrefix("id") ? String(municipality.dropFirst(2)) : municipality
        let province = code.count == 6 ? code.prefix(2) : code.count == 5 ? code.prefix(2) : code.prefix(1)
        return province == "35" || province == "38" ? TimeZone(identifier: "Atlantic/Canary")! : LocalDay.madrid
    }

    /// Cloud cover (%) of a sky-state code (`11` clear ... `16` overcast, `17` high clouds; 2x-7x the
    /// same cover with rain, snow or storms; `81`/`82` fog and mist; an `n` suffix for night).
    static func cloudCover(_ code: Int) -> Double? {
        if code == 81 || code == 82 { return 100 }
        guard (11...77).contains(code) else { return nil }
        switch code % 10 {
        case 1: return 0
        case 2: return 25
        case 3: return 50
        case 4: return 75
        case 5: return 87.5
        case 6: return 100
        case 7: return 25
        default: return nil
        }
    }

    /// The sky-state code of `"16n"`, `"14"`, `""`.
    static func skyCode(_ json: JSONValue?) -> Int? {
        guard let text = json?.templateText else { return nil }
        return Int(text.trimmingCharacters(in: .letters))
    }

    func sky(_ series: String, _ ts: Date, _ resolution: String, _ json: JSONValue?) -> [Reading] {
        guard let code = Self.skyCode(json) else { return [] }
        return [
            reading(series, "sky_state", ts, resolution, Double(code), "code", .forecast),
            reading(series, "cloud_cover", ts, resolution, Self.cloudCover(code), "%", .forecast),
        ].compactMap { $0 }
    }

    /// A forecast's series (`aemet:ID`), its municipality's time zone, and its days with their dates.
    static func forecastDays(_ answer: [JSONValue], kind: String) throws -> (String, TimeZone, [(LocalDay, JSONValue)]) {
        guard let forecast = answer.first, let days = forecast["prediccion"]?["dia"]?.arrayValue else {
            throw PullError(.malformed, "\(kind) without prediccion.dia")
        }
        let id = forecast["id"]?.templateText ?? ""
        let dated = try days.enumerated().map { i, dayJSON -> (LocalDay, JSONValue) in
            guard let fecha = dayJSON["fecha"]?.stringValue, let day = LocalDay(String(fecha.prefix(10))) else {
                throw PullError(.malformed, "prediccion.dia[\(i)] has no readable fecha")
            }
            return (day, dayJSON)
        }
        return ("aemet:\(id)", zone(municipality: id), dated)
    }

    /// The hourly forecast of a municipality (`prediccion/especifica/municipio/horaria/{id}`): series
    /// `aemet:ID`, quality `forecast`, hours (`periodo` `"08"`) in the municipality's local time, values
    /// matched by `periodo`, never by position. Temperature, apparent temperature and humidity at the
    /// hour (`PT0S`); precipitation, snow, sky state and cloud cover, wind and gust for the hour
    /// (`PT1H`); probabilities of precipitation, storm and snow for 6-hour windows (`"0107"`, `PT6H`).
    /// Wind in m/s (AEMET gives km/h).
    public func hourlyForecast(_ answer: [JSONValue]) throws -> [Reading] {
        let (series, zone, days) = try Self.forecastDays(answer, kind: "an hourly forecast")
        var readings: [Reading] = []
        for (day, dayJSON) in days {
            func hour(_ periodo: String?) -> Date? {
                guard let p = periodo, let h = Int(p), (0...23).contains(h) else { return nil }
                return try? InstantFormat.local("\(day) \(String(format: "%02d", h)):00", zone: zone)
            }
            func hourly(_ field: String, _ quantity: String, _ resolution: String, _ unit: String, precipitation: Bool = false) {
                for entry in dayJSON[field]?.arrayValue ?? [] {
                    guard let ts = hour(entry["periodo"]?.templateText) else { continue }
                    if let r = reading(series, quantity, ts, resolution, number(entry["value"], precipitation: precipitation), unit, .forecast) {
                        readings.append(r)
                    }
                }
            }
            hourly("temperatura", "temperature", "PT0S", "degC")
            hourly("sensTermica", "apparent_temperature", "PT0S", "degC")
            hourly("humedadRelativa", "humidity", "PT0S", "%")
            hourly("precipitacion", "precipitation", "PT1H", "mm", precipitation: true)
            hourly("nieve", "snow", "PT1H", "mm", precipitation: true)
            for entry in dayJSON["estadoCielo"]?.arrayValue ?? [] {
                if let ts = hour(entry["periodo"]?.templateText) { readings += sky(series, ts, "PT1H", entry["value"]) }
            }
            for entry in dayJSON["vientoAndRachaMax"]?.arrayValue ?? [] {
                guard let ts = hour(entry["periodo"]?.templateText) else { continue }
                if let speed = entry["velocidad"] {
                    let kmh = number(speed.arrayValue?.first ?? speed)
                    readings += [reading(series, "wind_speed", ts, "PT1H", kmh.map { $0 / 3.6 }, "m/s", .forecast)].compactMap { $0 }
                } else if let gust = number(entry["value"]) {
                    readings += [reading(series, "wind_gust", ts, "PT1H", gust / 3.6, "m/s", .forecast)].compactMap { $0 }
                }
            }
            for (field, quantity) in [("probPrecipitacion", "precipitation_probability"), ("probTormenta", "storm_probability"), ("probNieve", "snow_probability")] {
                for entry in dayJSON[field]?.arrayValue ?? [] {
                    // "0107": 01:00 to 07:00; "1901" ends the next day.
                    guard let p = entry["periodo"]?.templateText, p.count == 4, let ts = hour(String(p.prefix(2))) else { continue }
                    if let r = reading(series, quantity, ts, "PT6H", number(entry["value"]), "%", .forecast) { readings.append(r) }
                }
            }
        }
        return readings
    }

    /// The daily forecast of a municipality (`.../municipio/diaria/{id}`): series `aemet:ID`, quality
    /// `forecast`, days at local midnight. Maximum and minimum temperature and humidity (`P1D`);
    /// temperature at 06, 12, 18 and 24 h (`PT0S`); precipitation probability, sky state and cloud
    /// cover, wind and gust for the finest windows the day has (`00-06`... `PT6H` on the first days,
    /// `00-12`/`12-24` `PT12H` next, the whole day `P1D` last — windows never overlap, so each time
    /// has one value); the maximum UV index.
    public func dailyForecast(_ answer: [JSONValue]) throws -> [Reading] {
        let (series, zone, days) = try Self.forecastDays(answer, kind: "a daily forecast")
        var readings: [Reading] = []
        for (day, dayJSON) in days {
            let midnight = day.start(in: zone)
            func at(hour: Int) -> Date? { hour == 24 ? day.end(in: zone) : try? InstantFormat.local("\(day) \(String(format: "%02d", hour)):00", zone: zone) }
            for (field, quantity, unit) in [("temperatura", "temperature", "degC"), ("humedadRelativa", "humidity", "%")] {
                guard let object = dayJSON[field] else { continue }
                readings += [
                    reading(series, quantity + "_max", midnight, "P1D", number(object["maxima"]), unit, .forecast),
                    reading(series, quantity + "_min", midnight, "P1D", number(object["minima"]), unit, .forecast),
                ].compactMap { $0 }
                if field == "temperatura" {
                    for entry in object["dato"]?.arrayValue ?? [] {
                        guard let h = entry["hora"]?.intValue, let ts = at(hour: h) else { continue }
                        if let r = reading(series, quantity, ts, "PT0S", number(entry["value"]), unit, .forecast) { readings.append(r) }
                    }
                }
            }
            /// The entries of `field` for the finest windows that carry values: (start, resolution, entry).
            func windows(_ field: String, value: (JSONValue) -> JSONValue?) -> [(Date, String, JSONValue)] {
                var byLength: [Int: [(Date, String, JSONValue)]] = [:]
                for entry in dayJSON[field]?.arrayValue ?? [] {
                    guard let v = value(entry), AEMETValue(v) != .none || Self.skyCode(v) != nil else { continue }
                    let periodo = entry["periodo"]?.stringValue ?? "00-24"
                    let bounds = periodo.split(separator: "-").compactMap { Int($0) }
                    guard bounds.count == 2, bounds[0] < bounds[1], let start = at(hour: bounds[0]) else { continue }
                    let hours = bounds[1] - bounds[0]
                    byLength[hours, default: []].append((start, hours == 24 ? "P1D" : "PT\(hours)H", entry))
                }
                return byLength.keys.min().map { byLength[$0]! } ?? []
            }
            for (start, resolution, entry) in windows("probPrecipitacion", value: { $0["value"] }) {
                if let r = reading(series, "precipitation_probability", start, resolution, number(entry["value"]), "%", .forecast) { readings.append(r) }
            }
            for (start, resolution, entry) in windows("estadoCielo", value: { $0["value"] }) {
                readings += sky(series, start, resolution, entry["value"])
            }
            for (start, resolution, entry) in windows("viento", value: { $0["velocidad"] }) {
                if let r = reading(series, "wind_speed", start, resolution, number(entry["velocidad"]).map { $0 / 3.6 }, "m/s", .forecast) { readings.append(r) }
            }
            for (start, resolution, entry) in windows("rachaMax", value: { $0["value"] }) {
                if let r = reading(series, "wind_gust", start, resolution, number(entry["value"]).map { $0 / 3.6 }, "m/s", .forecast) { readings.append(r) }
            }
            if let r = reading(series, "uv_index", midnight, "P1D", number(dayJSON["uvMax"]), "index", .forecast) { readings.append(r) }
        }
        return readings
    }
}
