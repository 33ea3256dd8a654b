import CLua
import Foundation

/// A script's `process(msg)` given only what it names (`ScriptNames`): the parts of the message and
/// the fields of its readings whose names the script never mentions are left out of `msg`, and
/// taken back from the message when the result is read. Handing a message to Lua and reading it
/// back was most of a `lua` node's time; the script itself, a small part.
///
/// A script may keep a table it was given (`last = msg`) and return it in a later call, so every
/// table handed over with parts left out is recorded in a weak-keyed table, with the message it was
/// made from and its place in it (0: the message, i: its i-th reading). A returned table found there
/// takes what was left out from that message; one not found there is the script's own, which
/// cannot hold what the script never names. Every `sweepMessages` calls (or `sweepReadings`
/// readings), the recorded tables still alive — kept by the script, or garbage not collected yet —
/// are completed (what was left out put into them) and the record starts again; so is everything
/// when a result is not of the common shape, which is then read the general way.
extension LuaEngine {
    static let sweepMessages = 1024
    static let sweepReadings = 65_536

    /// Where the record of tables given to the script lies on the stack, and what was left out.
    struct GivenTables {
        let index: Int32
        let names: ScriptNames
        /// What of the message and of a reading the script was not given.
        let leftOutParts: MessageFields
        let leftOutFields: ReadingFields

        init(index: Int32, names: ScriptNames) {
            self.index = index
            self.names = names
            leftOutParts = names.unnamedParts
            leftOutFields = names.unnamedFields
        }
    }

    /// Calls a script's `process(msg)` with `message` and reads the messages it returned.
    func process(_ function: Function, _ message: Message) throws -> [Message] {
        // A place in the record is 24 bits of the message's number and 24 of the reading's.
        guard !function.names.isAll, message.readings.count < 1 << 24 else {
            return try call(function, message: message) { try messages(at: -1, like: message) }
        }
        return try locked {
            let top = lua_gettop(state)
            defer { lua_settop(state, top) }
            if givenNames != function.names || givenMessages.count >= Self.sweepMessages || givenReadings >= Self.sweepReadings {
                completeGivenTables()
                givenNames = function.names
            }
            // The record stays below the call, where the result is read against it.
            lua_rawgeti(state, Self.registry, lua_Integer(givenTablesRef))
            let given = GivenTables(index: top + 1, names: function.names)
            return try callHoldingTheLock(function) {
                pushGiven(message, number: givenMessages.count, in: given)
                givenMessages.append(message)
                givenReadings += message.readings.count
                lua_pushnil(state)
            } read: {
                if lua_type(state, -1) == LUA_TNIL { return [] }
                if let result = directMessage(at: -1, like: message, given: given) { return [result] }
                completeGivenTables()
                return try messages(at: -1, like: message)
            }
        }
    }

    /// The `msg` table of message `number`, with what the script names only, each table recorded.
    private func pushGiven(_ message: Message, number: Int, in given: GivenTables) {
        pushedTimes.removeAll(keepingCapacity: true)
        lua_checkstack(state, 8)
        lua_createtable(state, 0, 4)
        record(number, 0, in: given)
        set(message, given.names.message.subtracting(.readings))
        guard given.names.message.contains(.readings) else { return }
        lua_pushstring(state, Self.cString("readings"))
        lua_createtable(state, Int32(message.readings.count), 0)
        for (i, reading) in message.readings.enumerated() {
            lua_createtable(state, 0, 4)
            record(number, i + 1, in: given)
            set(reading, given.names.reading)
            lua_rawseti(state, -2, lua_Integer(i + 1))
        }
        lua_rawgeti(state, Self.registry, lua_Integer(arrayMetatableRef))
        lua_setmetatable(state, -2)
        lua_rawset(state, -3)
    }

    private func record(_ number: Int, _ place: Int, in given: GivenTables) {
        lua_pushvalue(state, -1)
        lua_pushinteger(state, lua_Integer(number << 24 | place))
        lua_rawset(state, given.index)
    }

    /// Where the table at `index` was given to the script: the message's number and the place in
    /// it (0: the message itself), or nil for a table the script made.
    func givenPlace(of index: Int32, in given: GivenTables) -> (number: Int, place: Int)? {
        lua_pushvalue(state, index)
        defer { enchufe_lua_pop(state, 1) }
        guard lua_rawget(state, given.index) == LUA_TNUMBER else { return nil }
        let code = Int(lua_tointegerx(state, -1, nil))
        return (code >> 24, code & 0xFF_FFFF)
    }

    /// Puts what was left out into every recorded table that is still alive, and starts a new record.
    func completeGivenTables() {
        guard !givenMessages.isEmpty else { return }
        // The texts of the `ts` pushed now belong to no place of the message being read.
        let times = pushedTimes
        defer { pushedTimes = times }
        lua_checkstack(state, 8)
        lua_rawgeti(state, Self.registry, lua_Integer(givenTablesRef))
        let tables = lua_gettop(state)
        lua_pushnil(state)
        while lua_next(state, tables) != 0 {
            let code = Int(lua_tointegerx(state, -1, nil))
            enchufe_lua_pop(state, 1)
            let message = givenMessages[code >> 24]
            let place = code & 0xFF_FFFF
            lua_pushvalue(state, -1)
            if place == 0 {
                set(message, givenNames.unnamedParts)
            } else {
                set(message.readings[place - 1], givenNames.unnamedFields)
            }
            enchufe_lua_pop(state, 1)
        }
        enchufe_lua_pop(state, 1)
        lua_createtable(state, 0, 0)
        lua_rawgeti(state, Self.registry, lua_Integer(weakKeysRef))
        lua_setmetatable(state, -2)
        lua_rawseti(state, Self.registry, lua_Integer(givenTablesRef))
        givenMessages.removeAll(keepingCapacity: true)
        givenReadings = 0
    }
}
