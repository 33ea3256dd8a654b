import EnchufeCore
import Foundation
import HTTPPull

/// Reads ESIOS' public PVPC archive (`/archives/70/download_json?date=YYYY-MM-DD`, no token) into
/// readings: `{"PVPC": [{"Dia": "27/03/2022", "Hora": "00-01", "PCB": "171,48", "CYM": ...}]}`, prices
/// in EUR/MWh as strings with a decimal comma. Series `esios:archive70:PCB` (peninsula, Baleares,
/// Canarias) and `esios:archive70:CYM` (Ceuta, Melilla), hourly.
///
/// The labels are not times to trust: the spring DST day has 23 rows labelled by local hour
/// (`01-02` then `03-04`), the autumn day 25 rows labelled by position (`00-01` ... `24-25`, the
/// repeated hour not repeated). So row k is the k-th hour of the local day, and the rows must be
/// exactly the day's hours, in order, each labelled one way or the other — else the answer is malformed.
public enum PVPCArchive {
    public static let columns = ["PCB", "CYM"]

    public static func readings(_ json: JSONValue, source: String = "") throws -> [Reading] {
        guard let rows = json["PVPC"]?.arrayValue else { throw PullError(.malformed, "a PVPC archive without 'PVPC' rows") }
        guard let first = rows.first else { return [] }
        guard let dia = first["Dia"]?.stringValue, let day = LocalDay(written: dia) else {
            throw PullError(.malformed, "PVPC[0].Dia is not a dd/mm/yyyy date")
        }
        let zone = LocalDay.madrid
        let hours = day.intervals(of: .seconds(3600), in: zone)
        guard rows.count == hours else {
            throw PullError(.malformed, "\(rows.count) PVPC rows for \(day), which has \(hours) hours")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var readings: [Reading] = []
        for (k, row) in rows.enumerated() {
            let ts = day.start(in: zone).addingTimeInterval(Double(k) * 3600)
            guard row["Dia"]?.stringValue == dia else { throw PullError(.malformed, "PVPC[\(k)] is not of \(dia)") }
            let label = row["Hora"]?.stringValue ?? ""
            let startHour = Int(label.split(separator: "-").first ?? "")
            guard startHour == k || startHour == calendar.component(.hour, from: ts) else {
                throw PullError(.malformed, "PVPC[\(k)].Hora '\(label)' is not hour \(k) of \(day)")
            }
            for column in columns {
                guard let text = row[column]?.stringValue, let value = Double(text.replacingOccurrences(of: ",", with: ".")) else {
                    throw PullError(.malformed, "PVPC[\(k)].\(column) is not a number")
                }
                readings.append(Reading(
                    series: "esios:archive70:\(column)", quantity: "price", ts: ts, resolution: "PT1H", value: value, unit: "EUR/MWh",
                    quality: .measured, source: source))
            }
        }
        return readings
    }
}
