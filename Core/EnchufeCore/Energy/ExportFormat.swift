import Foundation

/// The formats readings are exported in (`/api/v1/readings`, `/api/v1/exports/{name}`, `file.out`).
///
/// - `csv`: a header, then `series,quantity,ts,resolution,value,unit,quality,revision,seq` (UTC ISO times).
/// - `json`: `{"readings": [...]}`; `ndjson`: one reading object per line.
/// - `datadis-csv`: the Datadis web export layout, one row per supply and hour
///   (`cups;fecha;hora;consumo_kWh;metodoObtencion;energiaVertida_kWh;energiaGenerada_kWh;energiaAutoconsumida_kWh`,
///   `yyyy/mm/dd`, the hour's local end `01:00`..`24:00`, kWh with a decimal comma).
/// - `f5d`: the REE/CNMC 5D curve (`CUPS;yyyy/mm/dd hh:mm;season;ai;ae;r1;r2;r3;r4;method;firmeza;invoice;`),
///   integer Wh, labelled by the hour's local start + 1 h with the season flag (1 summer time).
///
/// The curve formats take hourly energy (`PT1H`): other readings are left out of them. Both are
/// read back by `webhook.in` / `file.in` (`CurveFiles`) into the same readings.
///
/// `settlement` is a community market's statement (`Settlement`): the `market_*` readings summed
/// per member over the range, `cups;bought_kWh;sold_kWh;value_EUR;grid_import_kWh;grid_export_kWh;savings_EUR`,
/// then a `total` row.
///
/// `coefficients` is the distributors' coefficient file of `coefficient` readings
/// (`CoefficientFile.init(readings:)`): `P1Y` ones make a static file, `PT1H` ones an hourly one.
public enum ExportFormat: String, Sendable, CaseIterable {
    case csv, json, ndjson
    case datadisCSV = "datadis-csv"
    case f5d
    /// The distributors' coefficient file (`CoefficientFile`) of stored `coefficient` readings.
    case coefficients
    /// A community market's statement per member (`Settlement`) of the stored `market_*` readings.
    case settlement

    public var contentType: String {
        switch self {
        case .csv, .datadisCSV, .settlement: "text/csv; charset=utf-8"
        case .json: "application/json"
        case .ndjson: "application/x-ndjson"
        case .f5d, .coefficients: "text/plain; charset=utf-8"
        }
    }

    /// One row per reading (what `/api/v1/readings` serves).
    public var isTable: Bool { self == .csv || self == .json || self == .ndjson }

    /// Whether rows join readings of several quantities of one supply and hour.
    public var isCurve: Bool { self == .datadisCSV || self == .f5d }

    /// The quantities a curve row carries, in its column order.
    static let curveQuantities = ["consumption", "surplus", "generation", "self_consumption"]
}

/// Writes readings in one format, a chunk at a time, so an export of millions of rows never has
/// to be held whole: `start()`, then `rows(...)` for each page, then `end()`.
public struct ExportWriter: Sendable {
    public let format: ExportFormat
    /// The local time of the curve formats' labels.
    public let zone: TimeZone
    private var wroteRow = false
    private var settlement = Settlement()

    public init(_ format: ExportFormat, zone: TimeZone = LocalDay.madrid) {
        self.format = format
        self.zone = zone
    }

    public func start() -> String {
        switch format {
        case .csv: "series,quantity,ts,resolution,value,unit,quality,revision,seq\n"
        case .json: "{\"readings\":["
        case .ndjson, .f5d, .coefficients: ""
        case .settlement: Settlement.csvHeader
        case .datadisCSV: "cups;fecha;hora;consumo_kWh;metodoObtencion;energiaVertida_kWh;energiaGenerada_kWh;energiaAutoconsumida_kWh\n"
        }
    }

    public func end() -> String {
        switch format {
        case .json: "]}\n"
        case .settlement: settlement.csvRows
        default: ""
        }
    }

    /// Rows of readings of the table formats (csv, json, ndjson).
    public mutating func rows(_ readings: [StoredReading]) -> String {
        var out = ""
        out.reserveCapacity(readings.count * (format == .csv ? 96 : 200))
        for r in readings {
            switch format {
            case .csv:
                // Appended piece by piece: an export writes millions of these.
                let g = r.reading
                out += Self.csvField(g.series)
                out += ","
                out += Self.csvField(g.quantity)
                out += ","
                out += ISO8601.string(g.ts)
                out += ","
                out += g.resolution
                out += ","
                out += Self.number(g.value)
                out += ","
                out += Self.csvField(g.unit)
                out += ","
                out += g.quality.rawValue
                out += ","
                out += String(r.revision)
                out += ","
                out += String(r.seq)
                out += "\n"
            case .json:
                out += (wroteRow ? "," : "") + Self.object(r).jsonText()
            case .ndjson:
                out += Self.object(r).jsonText() + "\n"
            case .settlement:
                settlement.add(r.reading)
            case .datadisCSV, .f5d, .coefficients:
                break
            }
            wroteRow = true
        }
        return out
    }

    /// Rows of the curve formats for one supply: its hourly readings of any quantities, in any
    /// order; one row per hour.
    public func curveRows(cups: String, _ readings: [Reading]) -> String {
        var byHour: [Date: [String: Reading]] = [:]
        for r in readings where r.resolution == "PT1H" && ExportFormat.curveQuantities.contains(r.quantity) {
            byHour[r.ts, default: [:]][r.quantity] = r
        }
        let calendar = LocalDay.calendar(zone)
        var out = ""
        for hour in byHour.keys.sorted() {
            let row = byHour[hour]!
            let estimated = row.values.contains { $0.quality == .estimated || $0.quality == .forecast }
            switch format {
            case .datadisCSV:
                // The hour's local end; midnight is 24:00 of the day the hour is in.
                let end = hour.addingTimeInterval(3600)
                let day = LocalDay(containing: hour, in: zone)
                let e = calendar.dateComponents([.hour], from: end)
                let label = LocalDay(containing: end, in: zone) == day ? e.hour! : 24
                let values = ExportFormat.curveQuantities.map { q in row[q].map { Self.decimalComma($0.value) } ?? "" }
                out += ([cups, Self.slashed(day), String(format: "%02d:00", label), values[0], estimated ? "Estimada" : "Real"] + values[1...]).map { "\"\($0)\"" }.joined(separator: ";") + "\n"
            case .f5d:
                // The hour's local start + 1 h on the wall clock, with the start's season.
                let s = calendar.dateComponents([.year, .month, .day, .hour], from: hour)
                var labelDay = LocalDay(year: s.year!, month: s.month!, day: s.day!)
                var labelHour = s.hour! + 1
                if labelHour == 24 {
                    labelDay = labelDay.adding(days: 1)
                    labelHour = 0
                }
                let season = zone.isDaylightSavingTime(for: hour) ? 1 : 0
                let wh = { (q: String) in row[q].map { String(Int(($0.value * 1000).rounded())) } ?? "" }
                let method = estimated ? 5 : 1
                out += "\(cups);\(Self.slashed(labelDay)) \(String(format: "%02d:00", labelHour));\(season);\(wh("consumption"));\(wh("surplus"));;;;;\(method);\(estimated ? 0 : 1);;\n"
            default:
                break
            }
        }
        return out
    }

    static func object(_ r: StoredReading) -> JSONValue {
        var o = r.reading.json.objectValue ?? [:]
        o["revision"] = .number(Double(r.revision))
        o["seq"] = .number(Double(r.seq))
        o["tenant"] = nil
        return .object(o)
    }

    /// A CSV field, quoted when it holds a comma, quote or line break. A field a spreadsheet would
    /// take for a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a
    /// leading `'` (OWASP's advice on CSV injection): a series name is data, never a formula.
    public static func csvField(_ text: String) -> String {
        let formula = text.utf8.first.map(startsFormula) ?? false
        guard formula || text.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 }) else { return text }
        return "\"" + (formula ? "'" : "") + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Whether a field starting with `byte` would be read as a formula by a spreadsheet.
    public static func startsFormula(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "=") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "@") || byte == 9 || byte == 13
    }

    /// A CSV number: integers as such, others in their shortest round-trip digits, in exponent form
    /// when the exponent is below -4 or 15 and above (as `%g` and PostgreSQL's float8 write them,
    /// so that the database can render the same rows: `PostgresStore.csvRows`).
    static func number(_ value: Double) -> String {
        if value.rounded() == value && abs(value) < 1e15 { return String(Int(value)) }
        let text = value.description
        guard abs(value) >= 1e15, !text.contains("e"), value.isFinite else { return text }
        // Swift writes fixed digits up to 2^53: 1234567890123456.5 → 1.2345678901234565e+15.
        let negative = text.hasPrefix("-")
        let unsigned = negative ? text.dropFirst() : Substring(text)
        let parts = unsigned.split(separator: ".", omittingEmptySubsequences: false)
        let integer = parts[0], fraction = parts.count > 1 ? parts[1] : ""
        var digits = String(integer + fraction)
        while digits.count > 1 && digits.hasSuffix("0") { digits.removeLast() }
        let mantissa = digits.count > 1 ? "\(digits.prefix(1)).\(digits.dropFirst())" : digits
        return (negative ? "-" : "") + mantissa + "e+\(integer.count - 1)"
    }

    static func decimalComma(_ value: Double) -> String {
        String(format: "%.3f", value).replacingOccurrences(of: ".", with: ",")
    }

    static func slashed(_ day: LocalDay) -> String { String(format: "%04d/%02d/%02d", day.year, day.month, day.day) }
}
