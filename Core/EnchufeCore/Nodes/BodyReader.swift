import Foundation

/// How `webhook.in` and `file.in` read a whole body or file into messages: JSON (an object, or an
/// array: one message per element), NDJSON (one per line), CSV (one per row, by the header), each
/// mapped to readings by `readings`; and the utilities' curve files (`CurveFiles`), one message
/// with a reading per row. The first problem is thrown as a `WebhookBodyError` naming the line or
/// element; nothing is half-read.
struct BodyReader: Sendable {
    static let formats = ["auto", "json", "ndjson", "csv", "distributor-csv", "datadis-csv", "f5d"]

    /// The options of `webhook.in` and `file.in` that say how a body or file is read.
    enum Key {
        static let format = OptionKey<String>(
            "format", .enumeration(formats), default: "auto",
            doc: "How a body or file is read; auto: a webhook's body by Content-Type (application/json, application/x-ndjson, text/csv), a file by its extension and first line.")
        static let csvSeparator = OptionKey<String>("csv_separator", default: ",", doc: "CSV column separator (one character).")
        static let timezone = OptionKey<String>(
            "timezone", .timezone, default: "Europe/Madrid", doc: "Local time of curve files (Atlantic/Canary for the Canary Islands).")
        /// Rows (lines, array elements) one body may have. A 10 MB CSV of 5 million tiny rows once took
        /// 1.25 GB and 38 s before its 400; 200,000 rows are a year of quarter hours for five supplies.
        static let maxRows = OptionKey<Int>(
            "max_rows", default: 200_000,
            doc: "Most rows (CSV or NDJSON lines, JSON array elements, curve-file rows) one body may have; more is refused whole (413 for a webhook).")
        static let readings = OptionSpec(
            "readings", .object(ReadingsMapping.optionSpecs), doc: "Map each message to readings (the `readings` node's options).")
    }

    /// The options above, as the nodes list them.
    static let optionSpecs = [Key.format.spec, Key.csvSeparator.spec, Key.timezone.spec, Key.readings, Key.maxRows.spec]

    /// A problem with the CSV separator, if any.
    static func problems(_ options: NodeOptions) -> [OptionProblem] {
        options[Key.csvSeparator].count == 1 ? [] : [OptionProblem(option: "csv_separator", "the separator is one character")]
    }

    let format: String
    let separator: Character
    let mapping: ReadingsMapping?
    let zone: TimeZone
    let maxRows: Int

    /// From a node's `format`, `csv_separator`, `timezone`, `max_rows` and `readings` options.
    init(_ o: NodeOptions) throws {
        format = o[Key.format]
        separator = o[Key.csvSeparator].first ?? ","
        zone = TimeZone(identifier: o[Key.timezone]) ?? LocalDay.madrid
        maxRows = max(1, o[Key.maxRows])
        mapping = try o.object("readings").map {
            try ReadingsMapping($0, expressions: NodeExpressions(limits: LuaLimits(options: o)), defaults: ["ts": "{attributes.received_at}"])
        }
    }

    /// Refuses a body of more than `maxRows` non-empty lines (the header line not counted), before
    /// anything is built of it.
    private func checkLines(_ body: [UInt8], header: Bool) throws {
        var rows = header ? -1 : 0
        var blank = true
        for byte in body {
            if byte == 0x0A {
                if !blank { rows += 1 }
                blank = true
            } else if byte != 0x0D && byte != 0x20 && byte != 0x09 {
                blank = false
            }
        }
        if !blank { rows += 1 }
        if rows > maxRows { throw tooManyRows(rows) }
    }

    private func tooManyRows(_ rows: Int?) -> WebhookBodyError {
        WebhookBodyError(
            "\(rows.map { "\($0) rows" } ?? "more rows than that"); this endpoint takes at most \(maxRows) in one body (max_rows): send them in parts",
            tooLarge: true)
    }

    /// The messages of a whole body, or the first problem (line or field).
    func messages(_ body: [UInt8], contentType: String?, receivedAt: Date, attributes: [String: String]) throws -> [Message] {
        let type = (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let kind: String
        if format != "auto" {
            kind = format
        } else {
            switch type {
            case "application/json", "text/json": kind = "json"
            case "application/x-ndjson", "application/ndjson", "application/jsonl": kind = "ndjson"
            case "text/csv", "text/plain", "application/octet-stream": kind = "csv"
            default: throw WebhookBodyError("content type '\(type.isEmpty ? "none" : type)' is not read here: send application/json, application/x-ndjson or text/csv", unsupportedType: true)
            }
        }
        if kind != "json" { try checkLines(body, header: kind != "ndjson") }
        // Curve files often come in ISO-8859-15; JSON must be UTF-8.
        guard let text = String(validating: body, as: UTF8.self) ?? (kind.hasSuffix("csv") || kind == "f5d" ? String(decoding: body.map { UInt16($0) }, as: UTF16.self) : nil) else {
            throw WebhookBodyError("the body is not UTF-8 text")
        }
        let at = ISO8601.string(receivedAt)
        var curve = ["distributor-csv", "datadis-csv", "f5d"].contains(kind) ? kind : nil
        if kind == "csv", format == "auto" {
            if CurveFiles.looksLike5D(text) { curve = "f5d" } else if CurveFiles.looksLabelled(text) { curve = "distributor-csv" }
        }
        if let curve {
            do {
                let readings = curve == "f5d" ? try CurveFiles.f5d(text, zone: zone) : try CurveFiles.labelledCSV(text, zone: zone)
                return [Message(
                    payload: ["format": .string(curve), "readings": .number(Double(readings.count))],
                    attributes: attributes.merging(["received_at": at]) { $1 }, readings: readings)]
            } catch let error as CurveFileError {
                throw WebhookBodyError(error.description)
            }
        }
        var payloads: [(Place, JSONValue)] = []
        switch kind {
        case "json":
            let json: JSONValue
            do {
                // A tiny value a byte or two long still costs tens of bytes in memory: bounded too.
                json = try JSONReader.parse(text, maxValues: 64 * maxRows)
            } catch {
                throw error.tooManyValues ? tooManyRows(nil) : WebhookBodyError("the body is not JSON: \(error)")
            }
            if let array = json.arrayValue {
                guard array.count <= maxRows else { throw tooManyRows(array.count) }
                payloads = array.enumerated().map { (.element($0.offset), $0.element) }
            } else {
                payloads = [(.body, json)]
            }
        case "ndjson":
            for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if trimmed.isEmpty { continue }
                do {
                    payloads.append((.line(i + 1), try JSONReader.parse(trimmed)))
                } catch {
                    throw WebhookBodyError("line \(i + 1), column \(error.column): not JSON: \(error.message)")
                }
            }
        default:
            payloads = try Self.csvRows(text, separator: separator)
        }
        let stamped = attributes.merging(["received_at": at]) { $1 }
        return try payloads.map { place, payload in
            var message = Message(payload: payload, attributes: stamped)
            if let mapping {
                do { message.readings = try mapping.readings(from: message) } catch { throw WebhookBodyError("\(place): \(error)") }
            }
            return message
        }
    }

    /// Where a message came from in the body, named only when it has a problem.
    enum Place: CustomStringConvertible {
        case body, element(Int), line(Int)

        var description: String {
            switch self {
            case .body: "the body"
            case .element(let i): "element \(i)"
            case .line(let n): "line \(n)"
            }
        }
    }

    /// CSV rows as objects by the header's column names; numbers become numbers.
    static func csvRows(_ text: String, separator: Character) throws -> [(Place, JSONValue)] {
        // "\r\n" is one Character in Swift: split on newline characters, not on "\n".
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        guard let headerLine = lines.first(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else { throw WebhookBodyError("an empty CSV body") }
        let header = headerLine.split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var rows: [(Place, JSONValue)] = []
        var seenHeader = false
        for (i, line) in lines.enumerated() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if !seenHeader {
                seenHeader = true
                continue
            }
            let cells = line.split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == header.count else {
                throw WebhookBodyError("line \(i + 1): \(cells.count) columns, the header has \(header.count)")
            }
            var object: [String: JSONValue] = [:]
            for (name, cell) in zip(header, cells) { object[name] = Double(cell).map(JSONValue.number) ?? .string(cell) }
            rows.append((.line(i + 1), .object(object)))
        }
        return rows
    }
}
