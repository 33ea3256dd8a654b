import CLua
import Foundation

/// Messages and JSON values into and out of Lua: `msg` is a table with `payload`, `topic`,
/// `attributes` and `readings`; JSON null is the global `null`; numbers without a fraction are Lua
/// integers; readings are tables whose `ts` is an ISO-8601 string.
extension LuaEngine {
    static let maxDepth = 100

    // MARK: Swift → Lua

    /// The message as the `msg` table, with `fields` only (the others are absent).
    func push(_ message: Message, fields: MessageFields = .all) {
        lua_createtable(state, 0, 4)
        pushedTimes.removeAll(keepingCapacity: true)
        set(message, fields)
    }

    /// Puts `fields` of `message` into the table at the top of the stack (raw: the table may be one
    /// a script has had).
    func set(_ message: Message, _ fields: MessageFields) {
        if fields.contains(.payload) {
            rawSet("payload") { push(message.payload) }
        }
        if fields.contains(.topic), let topic = message.topic {
            rawSet("topic") { push(topic) }
        }
        if fields.contains(.attributes) {
            rawSet("attributes") {
                lua_createtable(state, 0, Int32(message.attributes.count))
                for (key, value) in message.attributes {
                    push(key)
                    push(value)
                    lua_rawset(state, -3)
                }
            }
        }
        if fields.contains(.readings) {
            rawSet("readings") {
                lua_createtable(state, Int32(message.readings.count), 0)
                for (i, reading) in message.readings.enumerated() {
                    push(reading)
                    lua_rawseti(state, -2, lua_Integer(i + 1))
                }
                setArrayMetatable()
            }
        }
    }

    func push(_ reading: Reading) {
        lua_createtable(state, 0, 9)
        set(reading, .all)
    }

    /// Puts `fields` of `reading` into the table at the top of the stack (raw). A `ts` put there is
    /// remembered in `pushedTimes` with its text.
    func set(_ reading: Reading, _ fields: ReadingFields) {
        if fields.contains(.series) { rawSet("series", reading.series) }
        if fields.contains(.quantity) { rawSet("quantity", reading.quantity) }
        if fields.contains(.ts) {
            let ts = ISO8601.string(reading.ts)
            pushedTimes.append((ts, reading.ts))
            rawSet("ts", ts)
        }
        if fields.contains(.resolution) { rawSet("resolution", reading.resolution) }
        if fields.contains(.unit) { rawSet("unit", reading.unit) }
        if fields.contains(.quality) { rawSet("quality", reading.quality.rawValue) }
        if fields.contains(.tenant) { rawSet("tenant", reading.tenant) }
        if fields.contains(.source) { rawSet("source", reading.source) }
        if fields.contains(.value) {
            rawSet("value") { push(JSONValue.number(reading.value)) }
        }
        if fields.contains(.tags), !reading.tags.isEmpty {
            rawSet("tags") { push(JSONValue.object(reading.tags.mapValues(JSONValue.string))) }
        }
    }

    /// Sets `key` of the table at the top of the stack to what `value` pushes, without metamethods.
    private func rawSet(_ key: StaticString, _ value: () -> Void) {
        lua_pushstring(state, Self.cString(key))
        value()
        lua_rawset(state, -3)
    }

    private func rawSet(_ key: StaticString, _ text: String) {
        rawSet(key) { push(text) }
    }

    func push(_ value: JSONValue, depth: Int = 0) {
        lua_checkstack(state, 4)
        switch value {
        case .null:
            lua_rawgeti(state, Self.registry, lua_Integer(nullRef))
        case .bool(let b):
            lua_pushboolean(state, b ? 1 : 0)
        case .number(let n):
            // Whole numbers are Lua integers (`NativeExpression.Value` reads them the same way).
            if let i = value.intValue {
                lua_pushinteger(state, lua_Integer(i))
            } else {
                lua_pushnumber(state, n)
            }
        case .string(let s):
            push(s)
        case .array(let items):
            lua_createtable(state, Int32(clamping: items.count), 0)
            for (i, item) in items.enumerated() {
                push(item, depth: depth + 1)
                lua_rawseti(state, -2, lua_Integer(i + 1))
            }
            setArrayMetatable()
        case .object(let fields):
            lua_createtable(state, 0, Int32(clamping: fields.count))
            for (key, item) in fields {
                push(key)
                push(item, depth: depth + 1)
                lua_rawset(state, -3)
            }
        }
    }

    func push(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            _ = bytes.withMemoryRebound(to: CChar.self) { lua_pushlstring(state, $0.baseAddress, $0.count) }
        }
    }

    private func setArrayMetatable() {
        lua_rawgeti(state, Self.registry, lua_Integer(arrayMetatableRef))
        lua_setmetatable(state, -2)
    }

    // MARK: Lua → Swift

    /// The Lua value at `index` as JSON; `path` names it in errors (`result.items.3`).
    func json(at index: Int32, path: String) throws -> JSONValue {
        try json(at: index, path: { path }, depth: 0)
    }

    /// `path` is made only for an error: building the text of every value's path cost more than
    /// reading the value.
    private func json(at index: Int32, path: () -> String, depth: Int) throws -> JSONValue {
        let index = lua_absindex(state, index)
        switch lua_type(state, index) {
        case LUA_TNIL, LUA_TNONE:
            return .null
        case LUA_TBOOLEAN:
            return .bool(lua_toboolean(state, index) != 0)
        case LUA_TNUMBER:
            let n = double(at: index)
            guard n.isFinite else { throw LuaError(.value, "\(path()) is \(n), which JSON cannot hold") }
            return .number(n)
        case LUA_TSTRING:
            return .string(string(at: index) ?? "")
        case LUA_TTABLE:
            return try table(at: index, path: path, depth: depth)
        default:
            throw LuaError(.value, "\(path()) is a \(typeName(at: index)), which cannot become JSON")
        }
    }

    private func table(at index: Int32, path: () -> String, depth: Int) throws -> JSONValue {
        guard depth < Self.maxDepth else {
            throw LuaError(.value, "\(path()) nests deeper than \(Self.maxDepth) levels (a table that contains itself?)")
        }
        lua_checkstack(state, 4)
        if isNull(at: index) { return .null }
        var count = 0
        var largestIndex: lua_Integer = 0
        var sequence = true
        lua_pushnil(state)
        while lua_next(state, index) != 0 {
            count += 1
            if lua_type(state, -2) == LUA_TNUMBER, lua_isinteger(state, -2) != 0, lua_tointegerx(state, -2, nil) >= 1 {
                largestIndex = max(largestIndex, lua_tointegerx(state, -2, nil))
            } else {
                sequence = false
            }
            enchufe_lua_pop(state, 1)
        }
        let isArray = count == 0 ? hasArrayMetatable(at: index) : (sequence && largestIndex == count)
        if isArray {
            var items: [JSONValue] = []
            items.reserveCapacity(count)
            for i in 0..<count {
                lua_rawgeti(state, index, lua_Integer(i + 1))
                items.append(try json(at: -1, path: { "\(path()).\(i)" }, depth: depth + 1))
                enchufe_lua_pop(state, 1)
            }
            return .array(items)
        }
        var fields: [String: JSONValue] = [:]
        lua_pushnil(state)
        while lua_next(state, index) != 0 {
            let key: String
            switch lua_type(state, -2) {
            case LUA_TSTRING:
                key = string(at: -2) ?? ""
            case LUA_TNUMBER:
                key = lua_isinteger(state, -2) != 0 ? String(lua_tointegerx(state, -2, nil)) : String(lua_tonumberx(state, -2, nil))
            default:
                let type = typeName(at: -2)
                enchufe_lua_pop(state, 2)
                throw LuaError(.value, "\(path()) has a key of type \(type); JSON keys are strings")
            }
            do {
                fields[key] = try json(at: -1, path: { "\(path()).\(key)" }, depth: depth + 1)
            } catch {
                enchufe_lua_pop(state, 2)
                throw error
            }
            enchufe_lua_pop(state, 1)
        }
        return .object(fields)
    }

    /// Whether the value at `index` is JSON null (the global `null`).
    func isNull(at index: Int32) -> Bool {
        // `null` is a table: anything else is not it.
        guard lua_type(state, index) == LUA_TTABLE else { return false }
        let index = lua_absindex(state, index)
        lua_rawgeti(state, Self.registry, lua_Integer(nullRef))
        defer { enchufe_lua_pop(state, 1) }
        return lua_rawequal(state, index, -1) != 0
    }

    private func hasArrayMetatable(at index: Int32) -> Bool {
        guard lua_getmetatable(state, index) != 0 else { return false }
        lua_rawgeti(state, Self.registry, lua_Integer(arrayMetatableRef))
        defer { enchufe_lua_pop(state, 2) }
        return lua_rawequal(state, -1, -2) != 0
    }

    // MARK: Messages back

    /// What a `process(msg)` function returned: nil (no message), a message, or a list of messages.
    /// `original` is the message the function was given (and the last one pushed): what the
    /// function left as it was is taken from it rather than read again.
    func messages(at index: Int32, like original: Message? = nil) throws -> [Message] {
        if let message = directMessage(at: index, like: original) { return [message] }
        return try generalMessages(at: index)
    }

    /// `messages(at:)` through the JSON form of the whole result, for every shape and with the errors.
    func generalMessages(at index: Int32) throws -> [Message] {
        let index = lua_absindex(state, index)
        switch lua_type(state, index) {
        case LUA_TNIL:
            return []
        case LUA_TTABLE:
            break
        default:
            throw LuaError(.value, "process returned a \(typeName(at: index)); return nil, a message or a list of messages")
        }
        let value = try json(at: index, path: "result")
        switch value {
        case .array(let items):
            return try items.enumerated().map { i, item in try Self.message(from: item, path: "result.\(i)") }
        case .object(let fields) where fields.isEmpty:
            return []
        default:
            return [try Self.message(from: value, path: "result")]
        }
    }

    static let messageKeys: Set<String> = ["payload", "topic", "attributes", "readings"]

    /// A message from the JSON form of a returned table.
    static func message(from value: JSONValue, path: @autoclosure () -> String) throws -> Message {
        guard case .object(let fields) = value, !Set(fields.keys).isDisjoint(with: messageKeys) else {
            throw LuaError(.value, "\(path()) is not a message: a message is a table with payload, topic, attributes or readings")
        }
        var message = Message(payload: fields["payload"] ?? .null)
        if let topic = fields["topic"], !topic.isNull {
            guard case .string(let t) = topic else { throw LuaError(.value, "\(path()).topic must be a string") }
            message.topic = t
        }
        if let attributes = fields["attributes"], !attributes.isNull {
            guard case .object(let o) = attributes else { throw LuaError(.value, "\(path()).attributes must be a table of strings") }
            for (key, v) in o where !v.isNull { message.attributes[key] = v.templateText }
        }
        if let readings = fields["readings"], !readings.isNull {
            let items: [JSONValue]
            switch readings {
            case .array(let a): items = a
            case .object(let o) where o.isEmpty: items = []
            default: throw LuaError(.value, "\(path()).readings must be a list of readings")
            }
            message.readings = try items.enumerated().map { i, r in try reading(from: r, path: "\(path()).readings.\(i)") }
        }
        return message
    }

    static func reading(from value: JSONValue, path: @autoclosure () -> String) throws -> Reading {
        func text(_ key: String, required: Bool) throws -> String? {
            switch value[key] {
            case .string(let s)?: return s
            case nil, .null?:
                if required { throw LuaError(.value, "\(path()) has no '\(key)'") }
                return nil
            default: throw LuaError(.value, "\(path()).\(key) must be a string")
            }
        }
        func tags() throws -> [String: String] {
            switch value["tags"] {
            case nil, .null?, .array([])?: return [:]
            case .object(let o)?:
                return try o.mapValues { v in
                    guard let s = v.stringValue ?? (v.doubleValue != nil ? v.templateText : nil) else { throw LuaError(.value, "\(path()).tags values must be strings") }
                    return s
                }
            default: throw LuaError(.value, "\(path()).tags must be a table of strings")
            }
        }
        guard case .object = value else { throw LuaError(.value, "\(path()) must be a table") }
        let ts: Date
        switch value["ts"] {
        case .string(let s)?:
            guard let d = ISO8601.date(s) else { throw LuaError(.value, "\(path()).ts '\(s)' is not an ISO-8601 instant") }
            ts = d
        case .number(let n)?: ts = Date(timeIntervalSince1970: n)
        default: throw LuaError(.value, "\(path()).ts must be an ISO-8601 string or epoch seconds")
        }
        guard case .number(let number)? = value["value"] else { throw LuaError(.value, "\(path()).value must be a number") }
        var quality = Quality.measured
        if let q = try text("quality", required: false) {
            guard let parsed = Quality(rawValue: q) else {
                throw LuaError(.value, "\(path()).quality must be one of \(Quality.allCases.map(\.rawValue).joined(separator: ", ")), not '\(q)'")
            }
            quality = parsed
        }
        return Reading(
            tenant: try text("tenant", required: false) ?? "", series: try text("series", required: true)!,
            quantity: try text("quantity", required: true)!, ts: ts,
            resolution: try text("resolution", required: false) ?? "PT0S", value: number,
            unit: try text("unit", required: false) ?? "", quality: quality,
            source: try text("source", required: false) ?? "",
            tags: try tags())
    }
}
