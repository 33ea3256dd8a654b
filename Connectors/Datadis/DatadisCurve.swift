import EnchufeCore
import Foundation
import HTTPPull

/// Datadis consumption rows into readings with UTC interval starts. A row's `time` (`01:00`..`24:00`,
/// or `H:MM`) is the END of its interval in Spanish local time; the rows of each local day are placed
/// by `HourEnding` (by row count: 23, 24 or 25 hours, the merged autumn `02:00` row split into two
/// `estimated` halves). Labels outside 1..24 (i-DE's stray `00:00` rows) and rows that fit nowhere
/// are rejected one by one, with the reason, never aborting the rest.
public enum DatadisCurve {
    public struct Rejected: Sendable, CustomStringConvertible {
        public var date: String
        public var time: String
        public var reason: String
        public var description: String { "\(date) \(time): \(reason)" }
    }

    /// The quantities of a consumption row: (field, quantity).
    static let fields = [
        ("consumptionKWh", "consumption"), ("surplusEnergyKWh", "surplus"), ("generationEnergyKWh", "generation"),
        ("selfConsumptionEnergyKWh", "self_consumption"),
    ]

    /// `quarterHourly`: `measurementType=1` rows (15-minute intervals, labels ending each quarter).
    public static func readings(
        _ rows: [JSONValue], series: String, zone: TimeZone = LocalDay.madrid, quarterHourly: Bool = false
    ) -> (readings: [Reading], rejected: [Rejected]) {
        let step: TimeInterval = quarterHourly ? 900 : 3600
        let resolution = quarterHourly ? "PT15M" : "PT1H"
        var rejected: [Rejected] = []
        // Days in the order they come; rows in source order within each.
        var days: [(LocalDay, [(minutes: Int, row: JSONValue)])] = []
        var index: [LocalDay: Int] = [:]
        for row in rows {
            let date = row["date"]?.templateText ?? "", time = row["time"]?.templateText ?? ""
            guard let day = LocalDay(written: date) else {
                rejected.append(Rejected(date: date, time: time, reason: "not a date (YYYY/MM/DD)"))
                continue
            }
            let parts = time.split(separator: ":")
            guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...59).contains(m) else {
                rejected.append(Rejected(date: date, time: time, reason: "not a time (HH:MM)"))
                continue
            }
            let minutes = h * 60 + m
            guard minutes >= Int(step / 60), minutes <= 24 * 60, minutes % Int(step / 60) == 0 else {
                rejected.append(Rejected(date: date, time: time, reason: "outside 01:00..24:00 (an interval must end within its day)"))
                continue
            }
            if let i = index[day] {
                days[i].1.append((minutes, row))
            } else {
                index[day] = days.count
                days.append((day, [(minutes, row)]))
            }
        }

        var readings: [Reading] = []
        let flat = days.flatMap { day, rows in rows.map { (day, $0.minutes, $0.row) } }
        let slots = HourEnding.place(flat.map { ($0.0, $0.1) }, step: step, zone: zone)
        for ((day, minutes, row), slot) in zip(flat, slots) {
            let label = String(format: "%02d:%02d", minutes / 60, minutes % 60)
            guard let slot else {
                rejected.append(Rejected(date: day.description, time: label, reason: "no such local time on \(day) in \(zone.identifier)"))
                continue
            }
            let method = (row["obtainMethod"]?.stringValue ?? "").lowercased()
            let quality: Quality = slot.split || method.hasPrefix("estim") ? .estimated : .measured
            for (field, quantity) in fields {
                guard let value = row[field]?.doubleValue else { continue }
                for part in 0..<(slot.split ? 2 : 1) {
                    readings.append(Reading(
                        series: series, quantity: quantity, ts: slot.start.addingTimeInterval(Double(part) * step), resolution: resolution,
                        value: value * slot.share, unit: "kWh", quality: quality))
                }
            }
        }
        return (readings, rejected)
    }

    // MARK: Max power

    /// Maximeter rows (`date`, `time` a quarter-hour instant where `00:00` occurs, `maxPower` in kW)
    /// as `max_power` readings in kW at that local instant, `PT15M`.
    public static func maxPower(_ rows: [JSONValue], series: String, zone: TimeZone = LocalDay.madrid) -> (readings: [Reading], rejected: [Rejected]) {
        var readings: [Reading] = []
        var rejected: [Rejected] = []
        for row in rows {
            let date = row["date"]?.templateText ?? "", time = row["time"]?.templateText ?? ""
            guard let value = row["maxPower"]?.doubleValue else {
                rejected.append(Rejected(date: date, time: time, reason: "no maxPower"))
                continue
            }
            guard let day = LocalDay(written: date),
                let ts = try? InstantFormat.local("\(day) \(time)", zone: zone)
            else {
                rejected.append(Rejected(date: date, time: time, reason: "not a local date and time"))
                continue
            }
            readings.append(Reading(series: series, quantity: "max_power", ts: ts, resolution: "PT15M", value: value, unit: "kW", quality: .measured))
        }
        return (readings, rejected)
    }
}

