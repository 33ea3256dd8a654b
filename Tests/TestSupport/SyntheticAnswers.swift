import Foundation

/// API answers made up for a day no recording covers, in the API's own shape.
public enum SyntheticAnswers {
    /// A REData `precios-mercados-tiempo-real` answer for `day` (YYYY-MM-DD, Madrid): PVPC (1001)
    /// 100+k and spot (600) 50+k for the day's k-th hour — 23, 24 or 25 of them.
    public static func redataPrices(day: String, pvpc: Bool = true) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Madrid")!
        let parts = day.split(separator: "-").compactMap { Int($0) }
        let start = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2]))!
        let end = calendar.date(byAdding: .day, value: 1, to: start)!
        let hours = Int(end.timeIntervalSince(start) / 3600)
        func series(_ id: String, _ base: Int) -> String {
            let values = (0..<hours).map { k in
                let ts = start.addingTimeInterval(Double(k) * 3600).formatted(.iso8601)
                return #"{"value": \#(base + k), "percentage": 1, "datetime": "\#(ts)"}"#
            }
            return #"{"type": "x", "id": "\#(id)", "attributes": {"title": "t", "magnitude": "price", "values": [\#(values.joined(separator: ","))]}}"#
        }
        let included = (pvpc ? [series("1001", 100)] : []) + [series("600", 50)]
        return #"{"data": {"type": "Precios mercado peninsular en tiempo real", "id": "mer13"}, "included": [\#(included.joined(separator: ","))]}"#
    }
}

extension FixtureServer.Request {
    /// The value of a query parameter, percent-decoded.
    public func parameter(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].removingPercentEncoding == name { return String(parts[1]).removingPercentEncoding }
        }
        return nil
    }

    /// The day a Spanish API request asks for: the date of its `start_date`.
    public var startDay: String { String((parameter("start_date") ?? "").prefix(10)) }
}
