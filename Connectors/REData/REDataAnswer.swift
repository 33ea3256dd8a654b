import EnchufeCore
import Foundation
import HTTPPull

/// Reads a REData answer (`apidatos.ree.es/{lang}/datos/{category}/{widget}`) into readings.
///
/// Every `included[]` entry is one series, identified by its ESIOS indicator id (`1001` PVPC, `600`
/// spot, `1293` real demand...), never by its title, which changes with language and over time:
/// the series is `ree:ID` or, when the request named a geography, `ree:ID:GEO`. Times carry their Madrid
/// offset and are stored in UTC, so the repeated autumn hour (`02:00+02:00` then `02:00+01:00`) gives
/// two readings and the spring day 23. The resolution comes from the spacing of the values, not from
/// `time_trunc`, which REData does not always honour (quarter-hour spot prices since October 2025
/// next to hourly PVPC in the same answer; 5-minute demand).
public enum REDataAnswer {
    public struct Options: Sendable {
        public var geoID: String?
        /// The resolution of a series with a single value (its spacing cannot tell).
        public var singleValueResolution: String

        public init(geoID: String? = nil, singleValueResolution: String = "PT1H") {
            self.geoID = geoID
            self.singleValueResolution = singleValueResolution
        }
    }

    public static func readings(_ json: JSONValue, options: Options = Options(), source: String = "") throws -> [Reading] {
        if let errors = json["errors"]?.arrayValue, !errors.isEmpty {
            throw error(errors)
        }
        guard let included = json["included"]?.arrayValue else {
            throw PullError(.malformed, "a REData answer without 'included' (the series)")
        }
        var readings: [Reading] = []
        for (i, series) in included.enumerated() {
            guard let id = series["id"]?.templateText, !id.isEmpty, let attributes = series["attributes"] else {
                throw PullError(.malformed, "included[\(i)] has no id or attributes")
            }
            let values = attributes["values"]?.arrayValue ?? []
            var points: [(Date, Double)] = []
            for (j, point) in values.enumerated() {
                guard let text = point["datetime"]?.stringValue, let ts = ISO8601.date(text) else {
                    throw PullError(.malformed, "included[\(i)].values[\(j)].datetime is not an ISO-8601 time")
                }
                guard let value = point["value"]?.doubleValue else {
                    throw PullError(.malformed, "included[\(i)].values[\(j)].value is not a number")
                }
                points.append((ts, value))
            }
            points.sort { $0.0 < $1.0 }
            let resolution = Self.resolution(points.map(\.0)) ?? options.singleValueResolution
            let magnitude = attributes["magnitude"]?.stringValue ?? ""
            let title = attributes["title"]?.stringValue ?? ""
            let seriesName = "ree:\(id)" + (options.geoID.map { ":\($0)" } ?? "")
            for (ts, value) in points {
                readings.append(Reading(
                    series: seriesName, quantity: quantity(magnitude), ts: ts, resolution: resolution, value: value,
                    unit: unit(title: title, magnitude: magnitude), quality: .measured, source: source))
            }
        }
        return readings
    }

    /// The quantity of a series from its `magnitude`.
    static func quantity(_ magnitude: String) -> String {
        switch magnitude {
        case "price": return "price"
        case "energy": return "energy"
        case "power": return "power"
        default: return magnitude.isEmpty ? "value" : magnitude
        }
    }

    /// The unit written at the end of a title (`PVPC (€/MWh)`), in the hub's spelling.
    static func unit(title: String, magnitude: String) -> String {
        if let open = title.lastIndex(of: "("), let close = title.lastIndex(of: ")"), open < close {
            return String(title[title.index(after: open)..<close]).replacingOccurrences(of: "€", with: "EUR")
        }
        return magnitude == "price" ? "EUR/MWh" : ""
    }

    /// PT5M, PT15M, PT1H, P1D... from the most common spacing of the times, or nil for one value.
    static func resolution(_ times: [Date]) -> String? {
        guard times.count > 1 else { return nil }
        var counts: [Int: Int] = [:]
        for (a, b) in zip(times, times.dropFirst()) { counts[Int(b.timeIntervalSince(a).rounded()), default: 0] += 1 }
        guard let step = counts.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) })?.key else { return nil }
        switch step {
        case 86_400, 82_800, 90_000: return "P1D"  // a day, 23- and 25-hour days included
        case let s where s % 3600 == 0: return "PT\(s / 3600)H"
        case let s where s % 60 == 0: return "PT\(s / 60)M"
        default: return "PT\(step)S"
        }
    }

    /// The failure a non-2xx REData answer with an `errors[]` body means.
    @Sendable public static func errorBody(_ json: JSONValue, status: Int) -> PullError? {
        guard let errors = json["errors"]?.arrayValue, !errors.isEmpty else { return nil }
        return error(errors)
    }

    /// REData's `errors[]` as a classified failure: "not available at this moment" is `noData` (ask
    /// again later), anything else `upstream`.
    static func error(_ errors: [JSONValue]) -> PullError {
        let first = errors[0]
        let text = [first["title"]?.stringValue, first["detail"]?.stringValue].compactMap { $0 }.joined(separator: ": ")
        let status = first["status"].flatMap { Int($0.templateText) }
        let lowered = text.lowercased()
        if lowered.contains("no están disponibles") || lowered.contains("not available") || lowered.contains("no hay datos") {
            return PullError(.noData, status: status, text)
        }
        return PullError(.upstream, status: status, text.isEmpty ? first.jsonText() : text)
    }
}
