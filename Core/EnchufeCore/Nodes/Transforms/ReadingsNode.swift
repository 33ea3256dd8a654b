import Foundation

/// `readings`: turns JSON payloads into canonical readings by field mapping.
struct ReadingsNode: TransformNode {
    static let spec = NodeSpec(
        type: "readings", kind: .transform,
        summary: "Turns JSON payloads into canonical readings by field mapping (templates or Lua expressions)",
        doc: """
            Each field is a constant, a template (`"device:{payload.device}"`, `"{topic.2}"` for the
            topic's second level) or a Lua expression after `=` (`"=msg.payload.w / 1000"`). With `each`,
            one reading is made per element of that list, and templates and expressions see the element
            as `item` (`"{item.v}"`, `"=item.v * 4"`). The readings are added to the message's readings;
            the payload is kept. A message a reading cannot be made from (a missing value, a time that
            cannot be read, a local time skipped by a clock change) goes to the `errors` port with the
            field and the element that failed.
            """,
        options: ReadingsMapping.optionSpecs + LuaLimits.optionSpecs,
        example: """
            - id: to-readings
              type: readings
              each: payload.values
              series: "meter:{payload.meter}"
              quantity: energy_import
              ts: "{item.t}"
              ts_format: local
              value: "=item.wh / 1000"
              unit: kWh
              resolution: PT15M
              to: [store]
            """,
        check: { options in options.has(ReadingsMapping.Key.each) ? options.messagePathProblems("each") : [] },
        make: { context in .transform(try ReadingsNode(context.options)) })

    let mapping: ReadingsMapping

    init(_ options: NodeOptions) throws {
        mapping = try ReadingsMapping(options, expressions: NodeExpressions(limits: LuaLimits(options: options)))
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var out = message
        out.readings += try mapping.readings(from: message)
        return [.out(out)]
    }
}

/// A mapping from a message to readings: the options of the `readings` node, also taken as
/// `readings: {...}` by sources that map what they receive (`mqtt.in`, `webhook.in`).
public struct ReadingsMapping: Sendable {
    public enum Key {
        public static let series = RequiredOptionKey<JSONValue>("series", .template, doc: "What was measured: a CUPS, `device:{payload.device}`.", example: "device:{topic.2}")
        public static let quantity = RequiredOptionKey<JSONValue>("quantity", .template, doc: "`energy_import`, `power`, `price`...", example: "power")
        public static let value = RequiredOptionKey<JSONValue>("value", .template, doc: "The number.", example: "=msg.payload.w / 1000")
        public static let ts = OptionKey<JSONValue>("ts", .template, default: "{payload.ts}", doc: "The interval start (or instant) — see `ts_format`.")
        public static let unit = OptionKey<JSONValue>("unit", .template, default: "", doc: "`kWh`, `kW`, `EUR/MWh`...", example: "kW")
        public static let quality = OptionKey<JSONValue>("quality", .template, default: "measured", doc: "`measured`, `estimated`, `forecast` or `computed`.")
        public static let resolution = OptionKey<JSONValue>("resolution", .template, default: "PT0S", doc: "ISO-8601 duration: `PT15M`, `PT1H`; `PT0S` for an instant.")
        public static let timezone = OptionKey<String>("timezone", .timezone, default: "Europe/Madrid", doc: "The time zone of local times.")
        public static let tsFormat = OptionKey<InstantFormat>(
            "ts_format", default: .auto,
            doc: "`epoch_s`, `epoch_ms`, `iso8601` (with offset), `local` (wall-clock time in `timezone`), or `auto`.")
        public static let each = OptionKey<String?>("each", doc: "A list in the message (`payload.values`): one reading per element, which templates see as `item`.", example: "payload.values")
    }

    public static let optionSpecs: [OptionSpec] = [
        Key.series.spec,
        Key.quantity.spec,
        Key.value.spec,
        Key.ts.spec,
        Key.unit.spec,
        Key.quality.spec,
        Key.resolution.spec,
        Key.tsFormat.spec,
        Key.timezone.spec,
        Key.each.spec,
    ]


    let series, quantity, value, ts, unit, quality, resolution: BoundTemplate
    let format: InstantFormat
    let zone: TimeZone
    let each: MessagePath?
    /// The quality when it is a constant (the usual case), read once.
    let constantQuality: Quality?

    /// `defaults` replaces the default of a field (a source may know better where the time is).
    public init(_ options: NodeOptions, expressions: NodeExpressions, defaults: [String: JSONValue] = [:]) throws {
        var fields: [String: BoundTemplate] = [:]
        for name in ["series", "quantity", "value", "ts", "unit", "quality", "resolution"] {
            let value = options[name] ?? defaults[name] ?? Self.optionSpecs.first { $0.name == name }?.defaultValue ?? ""
            fields[name] = try expressions.bind(ValueTemplate.option(name, value, in: options))
        }
        (series, quantity, value, ts) = (fields["series"]!, fields["quantity"]!, fields["value"]!, fields["ts"]!)
        (unit, quality, resolution) = (fields["unit"]!, fields["quality"]!, fields["resolution"]!)
        format = options[Key.tsFormat]
        zone = TimeZone(identifier: options[Key.timezone]) ?? .gmt
        each = try options[Key.each].map(MessagePath.init)
        if case .constant(.string(let text)) = quality.template.form { constantQuality = Quality(rawValue: text) } else { constantQuality = nil }
    }

    /// The readings of a message; a field that cannot be made is a `PermanentError` naming it.
    public func readings(from message: Message) throws -> [Reading] {
        guard let each else { return [try reading(message, item: nil, at: nil)] }
        guard case .array(let items)? = each.value(in: message) else {
            throw PermanentError("readings: \(each) is not a list")
        }
        return try items.enumerated().map { i, item in try reading(message, item: item, at: i) }
    }

    /// The reading of a message, or of its element `index` of `each`.
    private func reading(_ message: Message, item: JSONValue?, at index: Int?) throws -> Reading {
        func field(_ name: String, _ template: BoundTemplate) throws -> JSONValue {
            let value = try template.value(for: message, item: item)
            if value.isNull { throw problem(name, "is missing") }
            return value
        }
        func text(_ name: String, _ template: BoundTemplate) throws -> String {
            let value = try field(name, template)
            switch value {
            case .string(let s): return s
            case .number, .bool: return value.templateText
            default: throw problem(name, "must be text, not \(value.jsonText())")
            }
        }
        let place = index.map { " (\(each.map(\.description) ?? "item").\($0))" } ?? ""
        func problem(_ name: String, _ what: String) -> PermanentError {
            PermanentError("readings: '\(name)' \(what)" + place)
        }
        let value: Double
        switch try field("value", self.value) {
        case .number(let n): value = n
        case .string(let s):
            guard let n = Double(s.replacingOccurrences(of: ",", with: ".")) else { throw problem("value", "'\(s)' is not a number") }
            value = n
        case let other: throw problem("value", "must be a number, not \(other.jsonText())")
        }
        let ts: Date
        do {
            ts = try format.instant(try field("ts", self.ts), zone: zone)
        } catch let error as TemplateError {
            throw problem("ts", error.description)
        }
        let quality: Quality
        if let constant = constantQuality {
            quality = constant
        } else {
            let qualityText = try text("quality", self.quality)
            guard let parsed = Quality(rawValue: qualityText) else {
                throw problem("quality", "must be one of \(Quality.allCases.map(\.rawValue).joined(separator: ", ")), not '\(qualityText)'")
            }
            quality = parsed
        }
        let unitValue = try unit.value(for: message, item: item)
        let reading = Reading(
            series: try text("series", series), quantity: try text("quantity", quantity), ts: ts, resolution: try text("resolution", resolution),
            value: value, unit: unitValue.isNull ? "" : unitValue.templateText, quality: quality)
        if let why = reading.problem {
            throw PermanentError("readings: " + why + place)
        }
        return reading
    }
}
