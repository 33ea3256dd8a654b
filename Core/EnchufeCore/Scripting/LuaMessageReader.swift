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
    /// The message table at `index`, or nil where the general reader must decide.
    func directMessage(at index: Int32, like original: Message? = nil) -> Message? {
        let index = lua_absindex(state, index)
        guard lua_type(state, index) == LUA_TTABLE else { return nil }
        lua_checkstack(state, 6)
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }

        let payload = lua_getfield(state, index, "payload")
        let topic = lua_getfield(state, index, "topic")
        let attributes = lua_getfield(state, index, "attributes")
        let readings = lua_getfield(state, index, "readings")
        let present = (payload != LUA_TNIL ? 1 : 0) + (topic != LUA_TNIL ? 1 : 0) + (attributes != LUA_TNIL ? 1 : 0) + (readings != LUA_TNIL ? 1 : 0)
        guard present > 0, entries(at: index) == present else { return nil }

        var message = Message()
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
            guard readings == LUA_TTABLE, let list = directReadings(at: top + 4, like: original?.readings ?? []) else { return nil }
            message.readings = list
        }
        return message
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
                let type = key.withCString { lua_getfield(state, index, $0) }
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
            _ = key.withCString { lua_getfield(state, index, $0) }
            defer { enchufe_lua_pop(state, 1) }
            guard holds(value, at: -1) else { return false }
        }
        return true
    }

    /// The readings of a list, or nil if it is not a plain list of well-formed reading tables.
    private func directReadings(at index: Int32, like originals: [Reading]) -> [Reading]? {
        let count = Int(lua_rawlen(state, index))
        guard entries(at: index) == count else { return nil }
        var list: [Reading] = []
        list.reserveCapacity(count)
        for i in 0..<count {
            lua_rawgeti(state, index, lua_Integer(i + 1))
            defer { enchufe_lua_pop(state, 1) }
            guard let reading = directReading(
                at: lua_gettop(state), like: i < originals.count ? originals[i] : nil, pushed: i < pushedTimes.count ? pushedTimes[i] : nil)
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
    /// script, and `pushed`, the `ts` pushed at that place with its text.
    private func directReading(at index: Int32, like original: Reading?, pushed: (text: String, ts: Date)?) -> Reading? {
        guard lua_type(state, index) == LUA_TTABLE, !isNull(at: index) else { return nil }
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }
        var present = 0
        // A field that is absent or null is `.some(nil)`; one that is not text gives up (nil).
        func text(_ key: StaticString, _ known: String? = nil) -> String?? {
            let type = lua_getfield(state, index, Self.cString(key))
            defer { enchufe_lua_pop(state, 1) }
            if type != LUA_TNIL { present += 1 }
            if type == LUA_TNIL || isNull(at: -1) { return .some(nil) }
            guard type == LUA_TSTRING else { return nil }
            if let known, holds(known, at: -1) { return .some(known) }
            guard let s = string(at: -1) else { return nil }
            return .some(s)
        }
        func number(_ key: StaticString) -> Double? {
            defer { enchufe_lua_pop(state, 1) }
            guard lua_getfield(state, index, Self.cString(key)) == LUA_TNUMBER else { return nil }
            present += 1
            let n = double(at: -1)
            return n.isFinite ? n : nil
        }
        guard let series = text("series", original?.series) ?? nil, let quantity = text("quantity", original?.quantity) ?? nil,
            let value = number("value"),
            let resolution = text("resolution", original?.resolution), let unit = text("unit", original?.unit),
            let qualityText = text("quality", original?.quality.rawValue),
            let tenant = text("tenant", original?.tenant), let source = text("source", original?.source)
        else { return nil }
        let ts: Date
        switch lua_getfield(state, index, "ts") {
        case LUA_TSTRING:
            if let pushed, holds(pushed.text, at: -1) {
                ts = pushed.ts
            } else {
                guard let s = string(at: -1), let d = ISO8601.date(s) else { return nil }
                ts = d
            }
            present += 1
        case LUA_TNUMBER:
            guard let n = number("ts") else { return nil }
            ts = Date(timeIntervalSince1970: n)
        default:
            return nil
        }
        var quality = Quality.measured
        if let qualityText {
            guard let q = Quality(rawValue: qualityText) else { return nil }
            quality = q
        }
        // Tags: none (absent, null or an empty table), or the general reader.
        let tags = lua_getfield(state, index, "tags")
        if tags != LUA_TNIL {
            present += 1
            guard isNull(at: -1) || (tags == LUA_TTABLE && entries(at: lua_gettop(state)) == 0) else { return nil }
        }
        guard entries(at: index) == present else { return nil }
        return Reading(
            tenant: tenant ?? "", series: series, quantity: quantity, ts: ts, resolution: resolution ?? "PT0S", value: value,
            unit: unit ?? "", quality: quality, source: source ?? "")
    }
}
