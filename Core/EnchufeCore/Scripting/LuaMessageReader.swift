import CLua
import Foundation

/// The message a `process(msg)` function returned, read from its table field by field, without
/// first making a `JSONValue` of the whole table and a message of that (which was most of a `lua`
/// node's time). Only the common, well-formed shape is read this way; anything else (a list of
/// messages, a field of an unexpected type, tags, a value JSON cannot hold) gives `nil`, and the
/// caller reads the result the general way, which accepts the same messages and names what is wrong.
/// A table with a field the general way would also read (and might refuse) is left to it too.
///
/// Given the message the script was called with (`like`), a part the script left equal to it — the
/// payload, the topic, the attributes, a reading's texts — is compared where it lies in the table
/// and taken from that message instead of being made again (for the payload, a new dictionary with
/// its keys hashed); a reading's `ts` with the text it was pushed as takes the instant it was pushed
/// from (`pushedTimes`) instead of its text parsed.
extension LuaEngine {
    /// The message table at `index`, or nil where the general reader must decide. With `given`, the
    /// parts the script was not given are taken from the message the table was made from (none for
    /// a table the script made; `LuaGivenTables.swift`).
    func directMessage(at index: Int32, like original: Message? = nil, given: GivenTables? = nil) -> Message? {
        let index = lua_absindex(state, index)
        guard lua_type(state, index) == LUA_TTABLE else { return nil }
        lua_checkstack(state, 6)
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }

        let payload = rawField(at: index, "payload")
        let topic = rawField(at: index, "topic")
        let attributes = rawField(at: index, "attributes")
        let readings = rawField(at: index, "readings")
        let present = (payload != LUA_TNIL ? 1 : 0) + (topic != LUA_TNIL ? 1 : 0) + (attributes != LUA_TNIL ? 1 : 0) + (readings != LUA_TNIL ? 1 : 0)
        var message = Message()
        var leftOut: MessageFields = []
        var from: Message?
        if let given {
            leftOut = given.leftOutParts
            switch givenPlace(of: index, in: given) {
            case nil: break
            case (let number, 0)?: from = givenMessages[number]
            default: return nil  // a reading returned as a message
            }
            // A part left out and not in the table comes from the message; one in the table (put
            // there when the record was completed) is read as it is.
            if let from {
                if leftOut.contains(.payload), payload == LUA_TNIL { message.payload = from.payload }
                if leftOut.contains(.topic), topic == LUA_TNIL { message.topic = from.topic }
                if leftOut.contains(.attributes), attributes == LUA_TNIL { message.attributes = from.attributes }
                if leftOut.contains(.readings), readings == LUA_TNIL { message.readings = from.readings }
            }
        }
        guard present > 0 || from != nil, entries(at: index) == present else { return nil }

        if payload != LUA_TNIL {
            if let original, holds(original.payload, at: top + 1) {
                message.payload = original.payload
            } else {
                guard let value = try? json(at: top + 1, path: "result.payload") else { return nil }
                message.payload = value
            }
        }
        if topic != LUA_TNIL, !isNull(at: top + 2) {
            guard topic == LUA_TSTRING else { return nil }
            if let known = original?.topic, holds(known, at: top + 2) {
                message.topic = known
            } else {
                guard let text = string(at: top + 2) else { return nil }
                message.topic = text
            }
        }
        if attributes != LUA_TNIL, !isNull(at: top + 3) {
            guard attributes == LUA_TTABLE else { return nil }
            if let known = original?.attributes, !known.isEmpty, holds(known, at: top + 3) {
                message.attributes = known
            } else {
                guard case .object(let fields)? = try? json(at: top + 3, path: "result.attributes") else { return nil }
                for (key, value) in fields where !value.isNull { message.attributes[key] = value.templateText }
            }
        }
        if readings != LUA_TNIL, !isNull(at: top + 4) {
            guard readings == LUA_TTABLE, let list = directReadings(at: top + 4, like: original?.readings ?? [], given: given) else { return nil }
            message.readings = list
        }
        return message
    }

    /// Pushes the field `key` of the table at `index` (an absolute index) without its metamethods: a
    /// returned table is read outside the protected call, where an error raised by a script's
    /// `__index` would abort the process. Returns the field's type.
    func rawField(at index: Int32, _ key: StaticString) -> Int32 {
        lua_pushstring(state, Self.cString(key))
        return lua_rawget(state, index)
    }

    func rawField(at index: Int32, _ key: String) -> Int32 {
        push(key)
        return lua_rawget(state, index)
    }

    /// A literal key as Lua takes it: its text ends with a NUL and its address stays the same (so
    /// Lua finds it in its string cache), without the C string a `String` argument is copied into.
    static func cString(_ key: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(key.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    // MARK: What the script left as it was

    /// Whether the Lua value at `index` is exactly what pushing `value` made (so the general reader
    /// would read `value` back). Empty tables are not judged (their JSON form depends on a
    /// metatable): false. (`null` has no entries, so a list or an object is never it.)
    func holds(_ value: JSONValue, at index: Int32) -> Bool {
        let index = lua_absindex(state, index)
        switch value {
        case .null:
            return lua_type(state, index) == LUA_TNIL || isNull(at: index)
        case .bool(let b):
            return lua_type(state, index) == LUA_TBOOLEAN && (lua_toboolean(state, index) != 0) == b
        case .number(let n):
            return lua_type(state, index) == LUA_TNUMBER && double(at: index) == n
        case .string(let text):
            return holds(text, at: index)
        case .array(let items):
            guard !items.isEmpty, lua_type(state, index) == LUA_TTABLE,
                Int(lua_rawlen(state, index)) == items.count, entries(at: index) == items.count
            else { return false }
            lua_checkstack(state, 2)
            for (i, item) in items.enumerated() {
                lua_rawgeti(state, index, lua_Integer(i + 1))
                defer { enchufe_lua_pop(state, 1) }
                guard holds(item, at: -1) else { return false }
            }
            return true
        case .object(let fields):
            guard !fields.isEmpty, lua_type(state, index) == LUA_TTABLE, entries(at: index) == fields.count else { return false }
            lua_checkstack(state, 2)
            for (key, field) in fields {
                // A key with the value null was pushed as `null`, never as nil.
                let type = rawField(at: index, key)
                defer { enchufe_lua_pop(state, 1) }
                guard type != LUA_TNIL, holds(field, at: -1) else { return false }
            }
            return true
        }
    }

    /// Whether the Lua value at `index` is a string with the bytes of `text`.
    func holds(_ text: String, at index: Int32) -> Bool {
        guard lua_type(state, index) == LUA_TSTRING else { return false }
        var length = 0
        guard let bytes = lua_tolstring(state, index, &length) else { return false }
        var text = text
        return text.withUTF8 { utf8 in
            guard utf8.count == length else { return false }
            guard let base = utf8.baseAddress, length > 0 else { return true }
            return memcmp(base, bytes, length) == 0
        }
    }

    /// Whether the table at `index` holds exactly these attributes (string values, no other key;
    /// never empty).
    private func holds(_ attributes: [String: String], at index: Int32) -> Bool {
        guard entries(at: index) == attributes.count else { return false }
        lua_checkstack(state, 2)
        for (key, value) in attributes {
            _ = rawField(at: index, key)
            defer { enchufe_lua_pop(state, 1) }
            guard holds(value, at: -1) else { return false }
        }
        return true
    }

    /// The readings of a list, or nil if it is not a plain list of well-formed reading tables.
    private func directReadings(at index: Int32, like originals: [Reading], given: GivenTables?) -> [Reading]? {
        let count = Int(lua_rawlen(state, index))
        guard entries(at: index) == count else { return nil }
        var list: [Reading] = []
        list.reserveCapacity(count)
        for i in 0..<count {
            lua_rawgeti(state, index, lua_Integer(i + 1))
            defer { enchufe_lua_pop(state, 1) }
            var leftOut: (fields: ReadingFields, from: Reading?) = ([], nil)
            if let given, !given.leftOutFields.isEmpty, lua_type(state, -1) == LUA_TTABLE {
                leftOut.fields = given.leftOutFields
                switch givenPlace(of: lua_gettop(state), in: given) {
                case nil: break
                case (_, 0)?: return nil  // a message in a list of readings
                case (let number, let place)?: leftOut.from = givenMessages[number].readings[place - 1]
                }
            }
            guard let reading = directReading(
                at: lua_gettop(state), like: i < originals.count ? originals[i] : nil, pushed: i < pushedTimes.count ? pushedTimes[i] : nil,
                leftOut: leftOut)
            else { return nil }
            list.append(reading)
        }
        return list
    }

    /// The number of entries in the table at `index`.
    private func entries(at index: Int32) -> Int {
        var count = 0
        lua_pushnil(state)
        while lua_next(state, index) != 0 {
            count += 1
            enchufe_lua_pop(state, 1)
        }
        return count
    }

    /// The reading at `index`; `original`, the reading at the same place in the message given to the
    /// script, and `pushed`, the `ts` pushed at that place with its text. The table is walked once
    /// (`lua_next`): a key that is not a reading's field, or a field of the wrong type, gives up.
    private func directReading(
        at index: Int32, like original: Reading?, pushed: (text: String, ts: Date)?,
        leftOut: (fields: ReadingFields, from: Reading?) = ([], nil)
    ) -> Reading? {
        guard lua_type(state, index) == LUA_TTABLE, !isNull(at: index) else { return nil }
        var texts = [String?](repeating: nil, count: LuaReadingField.texts)
        var value: Double?
        var ts: Date?
        var tags: [String: String] = [:]
        // The fields the script was not given: from the reading the table was made from (or none),
        // unless the table holds them (put there when the record was completed).
        if let from = leftOut.from {
            for key in LuaReadingField.textFields where leftOut.fields.contains(key.field) { texts[key.rawValue] = key.text(of: from) }
            if leftOut.fields.contains(.value) { value = from.value }
            if leftOut.fields.contains(.ts) { ts = from.ts }
            if leftOut.fields.contains(.tags) { tags = from.tags }
        }
        lua_pushnil(state)
        // The value at -1, the key at -2: a field taken pops the value (the key is left for the next
        // `lua_next`); giving up pops both.
        while lua_next(state, index) != 0 {
            guard let key = readingKey(at: -2) else {
                enchufe_lua_pop(state, 2)
                return nil
            }
            let type = lua_type(state, -1)
            defer { enchufe_lua_pop(state, 1) }
            switch key {
            case .value:
                guard type == LUA_TNUMBER else { break }
                let n = double(at: -1)
                if n.isFinite { value = n; continue }
            case .ts:
                if type == LUA_TSTRING {
                    if let pushed, holds(pushed.text, at: -1) {
                        ts = pushed.ts
                        continue
                    }
                    if let s = string(at: -1), let d = ISO8601.date(s) { ts = d; continue }
                } else if type == LUA_TNUMBER {
                    let n = double(at: -1)
                    if n.isFinite { ts = Date(timeIntervalSince1970: n); continue }
                }
            case .tags:
                // None (null or an empty table), or the general reader.
                if isNull(at: -1) || (type == LUA_TTABLE && entries(at: lua_gettop(state)) == 0) {
                    tags = [:]
                    continue
                }
            default:
                if isNull(at: -1) {
                    texts[key.rawValue] = nil
                    continue
                }
                guard type == LUA_TSTRING else { break }
                let known = original.map { key.text(of: $0) }
                if let known, holds(known, at: -1) {
                    texts[key.rawValue] = known
                    continue
                }
                if let text = string(at: -1) {
                    texts[key.rawValue] = text
                    continue
                }
            }
            enchufe_lua_pop(state, 1)
            return nil
        }
        guard let series = texts[LuaReadingField.series.rawValue], let quantity = texts[LuaReadingField.quantity.rawValue],
            let value, let ts
        else { return nil }
        var quality = Quality.measured
        if let text = texts[LuaReadingField.quality.rawValue] {
            guard let q = Quality(rawValue: text) else { return nil }
            quality = q
        }
        return Reading(
            tenant: texts[LuaReadingField.tenant.rawValue] ?? "", series: series, quantity: quantity, ts: ts,
            resolution: texts[LuaReadingField.resolution.rawValue] ?? "PT0S", value: value,
            unit: texts[LuaReadingField.unit.rawValue] ?? "", quality: quality, source: texts[LuaReadingField.source.rawValue] ?? "",
            tags: tags)
    }

    /// The field of a reading the key at `index` names, if it is a string naming one.
    private func readingKey(at index: Int32) -> LuaReadingField? {
        guard lua_type(state, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let bytes = lua_tolstring(state, index, &length) else { return nil }
        return LuaReadingField(UnsafeRawBufferPointer(start: bytes, count: length))
    }
}

/// The fields of a reading table, by their key's bytes. The text fields come first (their raw
/// value indexes the texts read).
private enum LuaReadingField: Int {
    case series, quantity, resolution, unit, quality, tenant, source, value, ts, tags

    static let texts = 7
    static let textFields: [LuaReadingField] = [.series, .quantity, .resolution, .unit, .quality, .tenant, .source]

    /// The same field in a `ReadingFields` set (whose bits are in this order).
    var field: ReadingFields { ReadingFields(rawValue: 1 << rawValue) }

    init?(_ bytes: UnsafeRawBufferPointer) {
        func `is`(_ name: StaticString) -> Bool {
            name.utf8CodeUnitCount == bytes.count && memcmp(name.utf8Start, bytes.baseAddress!, bytes.count) == 0
        }
        switch bytes.count {
        case 2 where `is`("ts"): self = .ts
        case 4 where `is`("unit"): self = .unit
        case 4 where `is`("tags"): self = .tags
        case 5 where `is`("value"): self = .value
        case 6 where `is`("series"): self = .series
        case 6 where `is`("tenant"): self = .tenant
        case 6 where `is`("source"): self = .source
        case 7 where `is`("quality"): self = .quality
        case 8 where `is`("quantity"): self = .quantity
        case 10 where `is`("resolution"): self = .resolution
        default: return nil
        }
    }

    /// This text field of `reading`.
    func text(of reading: Reading) -> String {
        switch self {
        case .series: reading.series
        case .quantity: reading.quantity
        case .resolution: reading.resolution
        case .unit: reading.unit
        case .quality: reading.quality.rawValue
        case .tenant: reading.tenant
        case .source: reading.source
        case .value, .ts, .tags: ""
        }
    }
}
