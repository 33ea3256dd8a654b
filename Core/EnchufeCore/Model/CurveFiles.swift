import Foundation

/// The curve files Spanish utilities and their customers exchange, read into readings. Each reader
/// takes a whole file and either returns all its readings or throws a `CurveFileError` naming the
/// first bad line: nothing of a bad file is half-read.
///
/// - `labelledCSV`: the distributors' consumer CSV (`CUPS;Fecha;Hora;Consumo_kWh;Metodo_obtencion`,
///   `dd/mm/yyyy`, hours `1`..`24` — `23` or `25` on DST days —, kWh with a decimal comma, R/E), the
///   e-distribución variant (`AE_kWh;AS_KWh;AE_AUTOCONS_kWh;REAL/ESTIMADO`) and the Datadis web
///   export (`cups;fecha;hora;consumo_kWh;metodoObtencion;energiaVertida_kWh;...`, quoted,
///   `yyyy/mm/dd`, `01:00`..`24:00`). Hours are interval ends in local time, placed by `HourEnding`.
/// - `f5d`: the REE/CNMC 5D files (F5D, P5D, RF5D): no header, `CUPS;yyyy/mm/dd hh:mm;season;ai;ae;...`,
///   Wh, the hour's end in local time with the season flag (1 summer time, 0 winter) telling the
///   repeated October hour apart.
public enum CurveFiles {
    /// Columns of the labelled CSVs, by lower-cased header name.
    static let quantities: [(String, [String])] = [
        ("consumption", ["consumo_kwh", "consumo", "consumo (kwh)", "ae_kwh"]),
        ("surplus", ["as_kwh", "energiavertida_kwh", "energia_vertida_kwh"]),
        ("generation", ["energiagenerada_kwh", "energia_generada_kwh"]),
        ("self_consumption", ["ae_autocons_kwh", "energiaautoconsumida_kwh", "energia_autoconsumida_kwh"]),
    ]

    /// Whether `text` starts like a labelled CSV (a header naming CUPS, date and hour columns).
    public static func looksLabelled(_ text: String) -> Bool {
        let header = lines(text).first?.1.lowercased() ?? ""
        return header.contains("cups") && header.contains("fecha") && header.contains("hora")
    }

    /// Whether `text` starts like a 5D file (`ES...;yyyy/mm/dd hh:mm;`).
    public static func looksLike5D(_ text: String) -> Bool {
        guard let first = lines(text).first?.1 else { return false }
        let cells = first.split(separator: ";", omittingEmptySubsequences: false)
        return cells.count >= 5 && cells[0].hasPrefix("ES") && cells[1].count == 16 && cells[1].contains("/")
    }

    static func lines(_ text: String) -> [(Int, String)] {
        var body = text
        if body.hasPrefix("\u{FEFF}") { body.removeFirst() }
        // "\r\n" is one Character in Swift: split on newline characters, not on "\n".
        return body.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated().compactMap { i, line in
            line.trimmingCharacters(in: .whitespaces).isEmpty ? nil : (i + 1, String(line))
        }
    }

    static func cells(_ line: String) -> [String] {
        line.split(separator: ";", omittingEmptySubsequences: false).map {
            var c = $0.trimmingCharacters(in: .whitespaces)
            if c.count >= 2, c.hasPrefix("\""), c.hasSuffix("\"") { c = String(c.dropFirst().dropLast()) }
            return c
        }
    }

    /// `0,432` (decimal comma, `.` grouping thousands) or `0.432`.
    static func number(_ text: String) -> Double? {
        text.contains(",") ? Double(text.replacingOccurrences(of: ".", with: "").replacingOccurrences(of: ",", with: ".")) : Double(text)
    }

    /// `3`, `03`, `03:00`, `24:00` as minutes after midnight.
    static func endMinutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard let h = Int(parts.first ?? "") else { return nil }
        let m = parts.count > 1 ? Int(parts[1]) : 0
        guard let m, (0..<60).contains(m), (1...25).contains(h) || (h == 0 && m > 0) else { return nil }
        return h * 60 + m
    }

    // MARK: Labelled CSVs

    public static func labelledCSV(_ text: String, zone: TimeZone = LocalDay.madrid) throws -> [Reading] {
        let all = lines(text)
        guard let (_, headerLine) = all.first else { throw CurveFileError(line: 1, "an empty file") }
        let header = cells(headerLine).map { $0.lowercased() }
        func column(_ names: [String]) -> Int? { header.firstIndex { names.contains($0) } }
        guard let cupsColumn = column(["cups"]), let dateColumn = column(["fecha"]), let hourColumn = column(["hora"]) else {
            throw CurveFileError(line: all[0].0, "the header needs CUPS, Fecha and Hora columns")
        }
        let valueColumns = quantities.compactMap { q, names in column(names).map { (q, $0) } }
        guard !valueColumns.isEmpty else { throw CurveFileError(line: all[0].0, "no energy column (Consumo_kWh, AE_kWh, consumo_kWh...)") }
        let methodColumn = column(["metodo_obtencion", "metodoobtencion", "real/estimado"])

        struct Row { var line: Int; var cups: String; var day: LocalDay; var minutes: Int; var values: [(String, Double)]; var estimated: Bool }
        var rows: [Row] = []
        for (number, line) in all.dropFirst() {
            let c = cells(line)
            guard c.count >= header.count - 1, c.count > max(cupsColumn, dateColumn, hourColumn) else {
                throw CurveFileError(line: number, "\(c.count) columns, the header has \(header.count)")
            }
            guard let day = LocalDay(written: c[dateColumn]) else { throw CurveFileError(line: number, "'\(c[dateColumn])' is not a date (dd/mm/yyyy or yyyy/mm/dd)") }
            guard let minutes = endMinutes(c[hourColumn]) else { throw CurveFileError(line: number, "'\(c[hourColumn])' is not an hour (1..24, 01:00..24:00)") }
            var values: [(String, Double)] = []
            for (quantity, index) in valueColumns where index < c.count && !c[index].isEmpty {
                guard let v = Self.number(c[index]) else { throw CurveFileError(line: number, "'\(c[index])' is not a number (\(header[index]))") }
                values.append((quantity, v))
            }
            let method = methodColumn.flatMap { $0 < c.count ? c[$0].lowercased() : nil } ?? ""
            rows.append(Row(line: number, cups: c[cupsColumn].uppercased(), day: day, minutes: minutes, values: values, estimated: method.hasPrefix("e")))
        }
        var readings: [Reading] = []
        for cups in Set(rows.map(\.cups)).sorted() {
            let mine = rows.filter { $0.cups == cups }
            for day in Set(mine.map(\.day)) {
                let labels = mine.filter { $0.day == day }.map(\.minutes)
                let hours = day.intervals(of: .seconds(3600), in: zone)
                if hours == 24, Set(labels).count != labels.count {
                    var seen = Set<Int>()
                    let repeated = mine.first { row in row.day == day && !seen.insert(row.minutes).inserted }!
                    throw CurveFileError(line: repeated.line, "hour \(repeated.minutes / 60) of \(day) appears twice")
                }
            }
            let slots = HourEnding.place(mine.map { ($0.day, $0.minutes) }, step: 3600, zone: zone)
            for (row, slot) in zip(mine, slots) {
                guard let slot else { throw CurveFileError(line: row.line, "hour \(row.minutes / 60) does not exist on \(row.day) in \(zone.identifier)") }
                for (quantity, value) in row.values {
                    for part in 0..<(slot.split ? 2 : 1) {
                        readings.append(try checked(Reading(
                            series: cups, quantity: quantity, ts: slot.start.addingTimeInterval(Double(part) * 3600), resolution: "PT1H",
                            value: value * slot.share, unit: "kWh", quality: row.estimated || slot.split ? .estimated : .measured), line: row.line))
                    }
                }
            }
        }
        return readings
    }

    // MARK: 5D files

    public static func f5d(_ text: String, zone: TimeZone = LocalDay.madrid) throws -> [Reading] {
        var readings: [Reading] = []
        for (number, line) in lines(text) {
            let c = cells(line)
            guard c.count >= 5 else { throw CurveFileError(line: number, "\(c.count) fields; a 5D line has CUPS;timestamp;season;ai;ae...") }
            let stamp = c[1].split(separator: " ")
            guard stamp.count == 2, let day = LocalDay(written: String(stamp[0])), let minutes = endMinutes(String(stamp[1])) ?? (stamp[1] == "00:00" ? 0 : nil) else {
                throw CurveFileError(line: number, "'\(c[1])' is not yyyy/mm/dd hh:mm")
            }
            guard let season = Int(c[2]), season == 0 || season == 1 else { throw CurveFileError(line: number, "season '\(c[2])' is not 0 or 1") }
            guard let start = startOfHour(endingAt: day, minutes: minutes, summer: season == 1, zone: zone) else {
                throw CurveFileError(line: number, "\(c[1]) with season \(season) is no hour in \(zone.identifier)")
            }
            // Methods 1 and 3 are real readings; the others profiles and estimates.
            let method = c.count > 9 ? Int(c[9]) : nil
            let quality: Quality = method == nil || method == 1 || method == 3 ? .measured : .estimated
            for (index, quantity) in [(3, "consumption"), (4, "surplus")] where !c[index].isEmpty {
                guard let wh = Double(c[index]) else { throw CurveFileError(line: number, "'\(c[index])' is not a whole number of Wh") }
                readings.append(try checked(Reading(series: c[0].uppercased(), quantity: quantity, ts: start, resolution: "PT1H", value: wh / 1000, unit: "kWh", quality: quality), line: number))
            }
        }
        return readings
    }

    /// `reading`, or the error of line `line` when it is not one the store can hold.
    static func checked(_ reading: Reading, line: Int) throws -> Reading {
        if let why = reading.problem { throw CurveFileError(line: line, why) }
        return reading
    }

    /// The start of the hour whose local end is `day` + `minutes` (`00:00`: the day's midnight), the
    /// start being in summer time when `summer`.
    static func startOfHour(endingAt day: LocalDay, minutes: Int, summer: Bool, zone: TimeZone) -> Date? {
        let startMinutes = minutes - 60
        let startDay = startMinutes < 0 ? day.adding(days: -1) : day
        let m = startMinutes < 0 ? startMinutes + 1440 : startMinutes
        guard let first = try? InstantFormat.local("\(startDay) \(String(format: "%02d:%02d", m / 60, m % 60))", zone: zone) else { return nil }
        let candidates = [first, first.addingTimeInterval(3600)].filter { LocalDay.wall($0, zone) == LocalDay.wall(first, zone) }
        return candidates.first { zone.isDaylightSavingTime(for: $0) == summer }
    }
}

/// A curve file line that cannot be read.
public struct CurveFileError: Error, CustomStringConvertible {
    public var line: Int
    public var message: String
    public init(line: Int, _ message: String) {
        self.line = line
        self.message = message
    }
    public var description: String { "line \(line): \(message)" }
}
