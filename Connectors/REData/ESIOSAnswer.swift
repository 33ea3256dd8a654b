import EnchufeCore
import Foundation
import HTTPPull

/// Reads an ESIOS indicator answer (`api.esios.ree.es/indicators/{id}`) into readings: one series per
/// indicator and geography, `esios:ID:GEO`, so the five PVPC geographies stay apart. The time of a
/// value is its `datetime` (with its Madrid offset), checked against `tz_time`; `datetime_utc` is
/// never used: on the repeated autumn hour it repeats the hour before.
public enum ESIOSAnswer {
    public static func readings(_ json: JSONValue, source: String = "") throws -> [Reading] {
        guard let indicator = json["indicator"], let values = indicator["values"]?.arrayValue else {
            throw PullError(.malformed, "an ESIOS answer without indicator.values")
        }
        guard let id = indicator["id"]?.templateText, !id.isEmpty else { throw PullError(.malformed, "an ESIOS indicator without id") }
        let magnitude = indicator["magnitud"]?.arrayValue?.first?["name"]?.stringValue ?? ""
        let (quantity, unit) = Self.quantity(magnitude)
        var byGeo: [String: [(Date, Double)]] = [:]
        for (i, point) in values.enumerated() {
            guard let text = point["datetime"]?.stringValue, let ts = ISO8601.date(text) else {
                throw PullError(.malformed, "values[\(i)].datetime is not an ISO-8601 time")
            }
            if let tz = point["tz_time"]?.stringValue, let utc = ISO8601.date(tz), abs(utc.timeIntervalSince(ts)) >= 1 {
                throw PullError(.malformed, "values[\(i)]: datetime \(text) and tz_time \(tz) disagree")
            }
            guard let value = point["value"]?.doubleValue else { throw PullError(.malformed, "values[\(i)].value is not a number") }
            let geo = point["geo_id"]?.templateText ?? "0"
            byGeo[geo, default: []].append((ts, value))
        }
        var readings: [Reading] = []
        for geo in byGeo.keys.sorted() {
            let points = byGeo[geo]!.sorted { $0.0 < $1.0 }
            let resolution = REDataAnswer.resolution(points.map(\.0)) ?? "PT1H"
            for (ts, value) in points {
                readings.append(Reading(
                    series: "esios:\(id):\(geo)", quantity: quantity, ts: ts, resolution: resolution, value: value, unit: unit,
                    quality: .measured, source: source))
            }
        }
        return readings
    }

    /// The hub's quantity and unit for an ESIOS `magnitud`.
    static func quantity(_ magnitude: String) -> (String, String) {
        switch magnitude.lowercased() {
        case "precio": return ("price", "EUR/MWh")
        case "energía", "energia": return ("energy", "MWh")
        case "potencia": return ("power", "MW")
        default: return (magnitude.isEmpty ? "value" : magnitude.lowercased(), "")
        }
    }
}
