import EnchufeCore
import Foundation
import HTTPPull

/// Reads OMIE's day-ahead marginal price file, `marginalpdbc_YYYYMMDD.1`, into readings.
///
/// The layout (OMIE's file model, as the OMIEData and pyomie parsers cite it; see
/// `docs/markets.md`): a first line `MARGINALPDBC;`, then one row per period,
/// `YYYY;MM;DD;PERIOD;PRICE_PT;PRICE_ES;` in EUR/MWh (column 5 is Portugal, column 6 Spain), and a
/// last line `*`. Periods count from 00:00 Spanish time in real time, so a period is placed by its
/// position: hourly files have 23, 24 or 25 rows (until 2025-09-30), quarter-hourly ones 92, 96 or
/// 100 (from 2025-10-01), and the count, checked against the day's length, gives the resolution.
/// Anything else (rows of another day, a period out of order, a file cut short) is refused whole:
/// a price placed at the wrong time is worse than none.
public enum OMIEFile {
    /// The series of each price column, in the order of the file's columns.
    public static let zones = ["PT", "ES"]

    public static func readings(_ text: String, day: LocalDay, source: String = "") throws -> [Reading] {
        var lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard let header = lines.first, header.uppercased().hasPrefix("MARGINALPDBC") else {
            throw PullError(.malformed, "not an OMIE day-ahead price file: it starts with '\(lines.first?.prefix(40) ?? "")', not 'MARGINALPDBC;'")
        }
        guard lines.last == "*" else { throw PullError(.malformed, "the file ends without its closing '*' (cut short?)") }
        lines = Array(lines.dropFirst().dropLast())

        var prices: [(pt: Double, es: Double)] = []
        for (i, line) in lines.enumerated() {
            let row = i + 2  // the file's line number
            let fields = line.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= 6, let y = Int(fields[0]), let m = Int(fields[1]), let d = Int(fields[2]), let period = Int(fields[3]) else {
                throw PullError(.malformed, "line \(row) is not YYYY;MM;DD;PERIOD;PRICE_PT;PRICE_ES;: '\(line.prefix(80))'")
            }
            guard LocalDay(year: y, month: m, day: d) == day else {
                throw PullError(.malformed, "line \(row) is for \(String(format: "%04d-%02d-%02d", y, m, d)), the file for \(day)")
            }
            guard period == prices.count + 1 else {
                throw PullError(.malformed, "line \(row) has period \(period) where period \(prices.count + 1) comes next")
            }
            guard let pt = price(fields[4]), let es = price(fields[5]) else {
                throw PullError(.malformed, "line \(row) has a price that is not a number: '\(fields[4])', '\(fields[5])'")
            }
            prices.append((pt, es))
        }

        let hours = day.intervals(of: .seconds(3600)), quarters = day.intervals(of: .seconds(900))
        let (step, resolution): (Double, String)
        switch prices.count {
        case hours: (step, resolution) = (3600, "PT1H")
        case quarters: (step, resolution) = (900, "PT15M")
        default:
            throw PullError(.malformed, "\(prices.count) periods for \(day), which has \(hours) hours (\(quarters) quarter-hours)")
        }
        let start = day.start()
        var readings: [Reading] = []
        readings.reserveCapacity(prices.count * 2)
        for (i, price) in prices.enumerated() {
            let ts = start.addingTimeInterval(Double(i) * step)
            for (zone, value) in zip(zones, [price.pt, price.es]) {
                readings.append(Reading(
                    series: "omie:\(zone)", quantity: "price", ts: ts, resolution: resolution, value: value, unit: "EUR/MWh",
                    quality: .measured, source: source))
            }
        }
        return readings
    }

    /// A price as OMIE writes it (`63.33`; a decimal comma is read too), finite.
    static func price(_ text: String) -> Double? {
        guard let value = Double(text.replacingOccurrences(of: ",", with: ".")), value.isFinite else { return nil }
        return value
    }

    /// The file's name for a day: `marginalpdbc_YYYYMMDD.1`.
    public static func name(_ day: LocalDay) -> String {
        String(format: "marginalpdbc_%04d%02d%02d.1", day.year, day.month, day.day)
    }
}
