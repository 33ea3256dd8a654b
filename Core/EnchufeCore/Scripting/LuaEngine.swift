import CLua
import Foundation
import Logging

/// One sandboxed Lua 5.4 state, owned by one node instance. Scripts may keep state across calls;
/// calls are serialised, so the state is never used by two tasks at once.
///
/// The sandbox has `string`, `table`, `math`, `utf8`, `coroutine`, the safe part of the base library
/// (`load` accepts text only), and `os.time`, `os.date`, `os.clock`, `os.difftime`; there is no `io`,
/// `debug`, `package`/`require`, `dofile`, `loadfile`, `string.dump` or `os.execute`. Each call runs
/// under an instruction limit and the state under a memory limit; hitting either raises a Lua error
/// the caller gets as a `LuaError`, and the state stays usable.
public final class LuaEngine: @unchecked Sendable {
    /// A compiled chunk kept in the state's registry.
    public struct Function: Sendable, Hashable {
        let ref: Int32
        /// What of a message the function is given as `msg`.
        var fields = MessageFields.all
        /// For a script's `process(msg)`: what of a message it names (`process(_:_:)` leaves the rest out).
        var names = ScriptNames.all
    }

    public let limits: LuaLimits
    let logger: Logger
    let state: OpaquePointer
    private let budget: UnsafeMutablePointer<enchufe_lua_budget>
    private let lock = NSLock()
    /// The `ts` of each reading of the message pushed last, with the text it was pushed as (under
    /// the lock): a reading read back with that text takes that instant instead of parsing the text.
    var pushedTimes: [(text: String, ts: Date)] = []
    /// The messages whose tables a script was given with parts left out since they were last
    /// completed, and how many readings they hold (`LuaGivenTables.swift`, under the lock).
    var givenMessages: [Message] = []
    var givenReadings = 0
    /// What was left out of them.
    var givenNames = ScriptNames.all
    /// The weak-keyed table from each table given to a script with parts left out to where it came
    /// from, and the metatable that makes its keys weak.
    private(set) var givenTablesRef: Int32 = 0
    private(set) var weakKeysRef: Int32 = 0
    /// The value JSON `null` becomes (Lua tables cannot hold nil): the global `null`.
    private(set) var nullRef: Int32 = 0
    /// The metatable of tables made from JSON arrays, so an empty one goes back as `[]`.
    private(set) var arrayMetatableRef: Int32 = 0

    static let registry = enchufe_lua_registryindex()

    public init(limits: LuaLimits = LuaLimits(), logger: Logger = Logger(label: "enchufe.lua")) throws {
        self.limits = limits
        self.logger = logger
        budget = .allocate(capacity: 1)
        budget.initialize(
            to: enchufe_lua_budget(
                used: 0, limit: max(limits.memoryBytes, 1 << 20), enforce: 0, instructions_left: -1, period: 100, deadline: 0, tripped: 0))
        guard let state = enchufe_lua_newstate(budget) else {
            budget.deallocate()
            throw LuaError(.memoryLimit, "could not create a Lua state")
        }
        self.state = state
        enchufe_lua_gc_generational(state)
        try openSandbox()
    }

    deinit {
        lua_close(state)
        budget.deallocate()
    }

    // MARK: Compiling and calling

    /// Compiles a chunk; a syntax error names the file and line.
    public func compile(_ source: LuaSource) throws -> Function {
        try locked {
            try load(source)
            return Function(ref: luaL_ref(state, Self.registry))
        }
    }

    /// Compiles an expression over `msg` (and `item`).
    public func compileExpression(_ source: LuaSource) throws -> Function {
        var function = try compile(source.expressionChunk())
        function.fields = MessageFields.read(byExpression: source.text)
        return function
    }

    /// Runs a chunk (a script's top level, which defines its functions and state).
    public func run(_ function: Function) throws {
        try locked {
            lua_rawgeti(state, Self.registry, lua_Integer(function.ref))
            try protectedCall(arguments: 0, results: 0)
        }
    }

    /// The global function `name` the scripts defined, if there is one.
    public func globalFunction(_ name: String) -> Function? {
        locked {
            guard lua_getglobal(state, name) == LUA_TFUNCTION else {
                enchufe_lua_pop(state, 1)
                return nil
            }
            return Function(ref: luaL_ref(state, Self.registry))
        }
    }

    /// Calls `function` with a message (and optionally an item) and returns its one result as JSON.
    public func evaluate(_ function: Function, message: Message, item: JSONValue? = nil) throws -> JSONValue {
        try call(function, message: message, item: item) { try self.json(at: -1, path: "result") }
    }

    /// Calls `function` with a message and reads its one result with `read` (the result is at the
    /// top of the stack while `read` runs).
    func call<T>(_ function: Function, message: Message, item: JSONValue? = nil, read: () throws -> T) throws -> T {
        try locked {
            try callHoldingTheLock(function) {
                push(message, fields: function.fields)
                if let item { push(item) } else { lua_pushnil(state) }
            } read: {
                try read()
            }
        }
    }

    /// Calls `function` with the two values `arguments` pushes and reads its one result with
    /// `read` (at the top of the stack while `read` runs); the stack is as it was afterwards.
    func callHoldingTheLock<T>(_ function: Function, arguments: () -> Void, read: () throws -> T) throws -> T {
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }
        lua_rawgeti(state, Self.registry, lua_Integer(function.ref))
        arguments()
        try protectedCall(arguments: 2, results: 1)
        return try read()
    }

    /// Memory the state uses now, in bytes.
    public var memoryInUse: Int { locked { Int(budget.pointee.used) } }

    // MARK: Internals

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Loads a chunk onto the stack (text only, never bytecode).
    private func load(_ source: LuaSource) throws {
        let chunk = source.chunk
        let status = chunk.utf8CString.withUnsafeBufferPointer { text in
            enchufe_lua_loadbuffer(state, text.baseAddress, text.count - 1, source.chunkName)
        }
        guard status == LUA_OK else {
            let message = string(at: -1) ?? "syntax error"
            enchufe_lua_pop(state, 1)
            throw LuaError(.syntax, message)
        }
    }

    /// Calls the function below `arguments` values on the stack under the limits. Values are put on
    /// the stack with the memory limit off, so the host never hits it; the script always does.
    func protectedCall(arguments: Int32, results: Int32) throws {
        budget.pointee.enforce = 1
        enchufe_lua_start_call(state, Int64(limits.instructions), limits.seconds)
        let status = enchufe_lua_pcall(state, arguments, results, 0)
        let tripped = budget.pointee.tripped
        enchufe_lua_end_call(state)
        budget.pointee.enforce = 0
        guard status != LUA_OK else { return }
        let message = string(at: -1) ?? "error object is a \(typeName(at: -1)) value"
        enchufe_lua_pop(state, 1)
        // Whatever the script made of the limit's error (caught, replaced), the budget says what happened.
        switch tripped {
        case 1:
            let at = message.hasSuffix("instruction limit exceeded") ? message : "instruction limit exceeded"
            throw LuaError(.instructionLimit, "\(at) (\(limits.instructions) instructions per call)")
        case 2:
            let at = message.hasSuffix("time limit exceeded") ? message : "time limit exceeded"
            throw LuaError(.timeLimit, "\(at) (\(DurationText.format(limits.duration)) per call)")
        default: break
        }
        if status == LUA_ERRMEM {
            throw LuaError(.memoryLimit, "memory limit of \(limits.memoryBytes >> 20) MiB exceeded")
        }
        throw LuaError(.runtime, message)
    }

    /// The number at `index` as a `Double` (a Lua integer converted, a float as it is).
    func double(at index: Int32) -> Double {
        lua_isinteger(state, index) != 0 ? Double(lua_tointegerx(state, index, nil)) : lua_tonumberx(state, index, nil)
    }

    func string(at index: Int32) -> String? {
        guard lua_type(state, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let bytes = lua_tolstring(state, index, &length) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    func typeName(at index: Int32) -> String {
        String(cString: lua_typename(state, lua_type(state, index)))
    }

    // MARK: The sandbox

    private func openSandbox() throws {
        let libraries: [(String, lua_CFunction)] = [
            ("_G", luaopen_base), ("string", luaopen_string), ("table", luaopen_table), ("math", luaopen_math),
            ("utf8", luaopen_utf8), ("coroutine", luaopen_coroutine), ("os", luaopen_os),
        ]
        for (name, open) in libraries {
            luaL_requiref(state, name, open, 1)
            enchufe_lua_pop(state, 1)
        }
        // JSON null and the array marker, kept in the registry.
        lua_createtable(state, 0, 0)
        lua_createtable(state, 0, 1)
        lua_pushstring(state, "null")
        lua_setfield(state, -2, "__name")
        lua_setmetatable(state, -2)
        lua_pushvalue(state, -1)
        lua_setglobal(state, "null")
        nullRef = luaL_ref(state, Self.registry)
        lua_createtable(state, 0, 1)
        lua_pushstring(state, "array")
        lua_setfield(state, -2, "__name")
        arrayMetatableRef = luaL_ref(state, Self.registry)
        lua_createtable(state, 0, 1)
        lua_pushstring(state, "k")
        lua_setfield(state, -2, "__mode")
        weakKeysRef = luaL_ref(state, Self.registry)
        lua_createtable(state, 0, 0)
        lua_rawgeti(state, Self.registry, lua_Integer(weakKeysRef))
        lua_setmetatable(state, -2)
        givenTablesRef = luaL_ref(state, Self.registry)

        try load(LuaSource(text: Self.prelude, file: "sandbox"))
        lua_pushlightuserdata(state, Unmanaged.passUnretained(self).toOpaque())
        lua_pushcclosure(state, luaLog, 1)
        lua_rawgeti(state, Self.registry, lua_Integer(arrayMetatableRef))
        enchufe_lua_push_swift(state, luaPatternSearch)
        enchufe_lua_push_swift(state, luaPatternReplace)
        enchufe_lua_push_swift(state, luaPlainFind)
        try protectedCall(arguments: 5, results: 0)
    }

    /// Runs once in every new state, with full libraries, and takes away what scripts must not have.
    private static let prelude = """
        local log, array_mt, search, replace, plain_find = ...
        local time, date, clock, difftime = os.time, os.date, os.clock, os.difftime
        os = { time = time, date = date, clock = clock, difftime = difftime }
        dofile, loadfile = nil, nil
        string.dump = nil
        local raw_load = load
        load = function(chunk, name, mode, env)
          if mode ~= nil and mode ~= "t" then error("load: only text chunks are allowed", 2) end
          if env == nil then return raw_load(chunk, name, "t") end
          return raw_load(chunk, name, "t", env)
        end
        local tostring, concat, pack = tostring, table.concat, table.pack
        print = function(...)
          local parts = pack(...)
          for i = 1, parts.n do parts[i] = tostring(parts[i]) end
          log(concat(parts, "\\t", 1, parts.n))
        end
        -- An empty table that goes back to JSON as [] rather than {}.
        local raw_setmetatable, rawget, type, error = setmetatable, rawget, type, error
        array = function(t) return raw_setmetatable(t or {}, array_mt) end
        -- Finalizers run with hooks off, where no limit can stop them.
        setmetatable = function(t, mt)
          if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
            error("setmetatable: __gc finalizers are not allowed in the sandbox", 2)
          end
          return raw_setmetatable(t, mt)
        end

        -- Lua calls a message handler where the error was raised; for a limit's error that is inside
        -- the count hook, with hooks off, where a looping handler could never be stopped. Without
        -- `debug` a handler cannot look at the stack anyway, so it runs after the unwinding instead.
        local pcall_raw, pack_args, unpack_args = pcall, table.pack, table.unpack
        xpcall = function(f, handler, ...)
          if type(handler) ~= "function" then
            error("bad argument #2 to 'xpcall' (function expected, got " .. (handler == nil and "no value" or type(handler)) .. ")", 2)
          end
          local r = pack_args(pcall_raw(f, ...))
          if r[1] then return unpack_args(r, 1, r.n) end
          return false, handler(r[2])
        end

        -- C functions that loop where no hook reaches: refused past a size, or run on Enchufe's own
        -- pattern matcher, which keeps to the call's time limit (LuaPatterns.swift).
        local tostring, tonumber, tointeger, select = tostring, tonumber, math.tointeger, select
        local pack, unpack, concat_raw, move_raw = table.pack, table.unpack, table.concat, table.move
        local raw_find, raw_rep, sub, byte = string.find, string.rep, string.sub, string.byte
        local most = 1 << 24
        local function text(v, n, name)
          local t = type(v)
          if t == "string" then return v end
          if t == "number" then return tostring(v) end
          error("bad argument #" .. n .. " to '" .. name .. "' (string expected, got " .. (t == "nil" and "no value" or t) .. ")", 3)
        end
        local function integer(v, default, n, name)
          if v == nil and default ~= nil then return default end
          local i = type(v) == "number" and tointeger(v) or (type(v) == "string" and tointeger(tonumber(v)))
          if not i then
            local why = type(v) == "number" and "number has no integer representation"
              or ("number expected, got " .. (v == nil and "no value" or type(v)))
            error("bad argument #" .. n .. " to '" .. name .. "' (" .. why .. ")", 3)
          end
          return i
        end
        -- The 0-based start of a 1-based position that may count from the end.
        local function start(init, len)
          if init > 0 then return init - 1 elseif init == 0 or init < -len then return 0 else return len + init end
        end
        local function captures(a, b, ...)
          if a == nil then return nil end
          return ...
        end
        string.find = function(s, p, init, plain)
          s, p = text(s, 1, "find"), text(p, 2, "find")
          local from = start(integer(init, 1, 3, "find"), #s)
          if from > #s then return nil end
          if plain or not raw_find(p, "[%^%$%*%+%?%.%(%[%%%-]") then return plain_find(s, p, from) end
          local r = pack(search(s, p, from, 0, -1))
          if r[1] == nil then return nil end
          return r[1] + 1, r[2], unpack(r, 3, r.n)
        end
        string.match = function(s, p, init)
          s, p = text(s, 1, "match"), text(p, 2, "match")
          local from = start(integer(init, 1, 3, "match"), #s)
          if from > #s then return nil end
          return captures(search(s, p, from, 1, -1))
        end
        string.gmatch = function(s, p, init)
          s, p = text(s, 1, "gmatch"), text(p, 2, "gmatch")
          local from = start(integer(init, 1, 3, "gmatch"), #s)
          if from > #s then from = #s + 1 end
          local last = -1
          local function step(a, b, ...)
            if a == nil then return nil end
            from, last = b, b
            return ...
          end
          return function() return step(search(s, p, from, 2, last)) end
        end
        string.gsub = function(s, p, repl, n)
          s, p = text(s, 1, "gsub"), text(p, 2, "gsub")
          local max = integer(n, #s + 1, 4, "gsub")
          local kind = type(repl)
          if kind == "string" or kind == "number" then return replace(s, p, tostring(repl), max) end
          if kind ~= "table" and kind ~= "function" then
            error("bad argument #3 to 'gsub' (string/function/table expected, got " .. (kind == "nil" and "no value" or kind) .. ")", 2)
          end
          local anchored = byte(p, 1) == 94
          local out, count, src, last = {}, 0, 0, -1
          while count < max do
            local r = pack(search(s, p, src, 1, last))
            local a, b = r[1], r[2]
            if a == nil then break end
            out[#out + 1] = sub(s, src + 1, a)
            local v
            if kind == "function" then v = repl(unpack(r, 3, r.n)) else v = repl[r[3]] end
            if not v then
              v = sub(s, a + 1, b)
            elseif type(v) ~= "string" and type(v) ~= "number" then
              error("invalid replacement value (a " .. type(v) .. ")", 2)
            end
            out[#out + 1] = v
            count, src, last = count + 1, b, b
            if anchored then break end
          end
          out[#out + 1] = sub(s, src + 1)
          return concat_raw(out), count
        end
        string.rep = function(s, n, sep)
          s, n = text(s, 1, "rep"), integer(n, nil, 2, "rep")
          if sep ~= nil then sep = text(sep, 3, "rep") end
          if n > 0 and #s == 0 and (sep == nil or #sep == 0) then return "" end
          return raw_rep(s, n, sep)
        end
        table.move = function(a1, f, e, t, a2)
          local ff, ee = tointeger(f), tointeger(e)
          if ff and ee and ee >= ff and ee - ff >= most then error("table.move: more than " .. most .. " elements", 2) end
          if a2 == nil then return move_raw(a1, f, e, t) end
          return move_raw(a1, f, e, t, a2)
        end
        table.concat = function(list, sep, i, j)
          local ii, jj = tointeger(i or 1), tointeger(j)
          if ii and jj and jj >= ii and jj - ii >= most then error("table.concat: more than " .. most .. " elements", 2) end
          return concat_raw(list, sep, i, j)
        end
        """
}

/// `print` in scripts: one line in the node's log.
private let luaLog: lua_CFunction = { state in
    guard let state, let engine = lua_touserdata(state, enchufe_lua_registryindex() - 1) else { return 0 }
    let lua = Unmanaged<LuaEngine>.fromOpaque(engine).takeUnretainedValue()
    if let line = lua.string(at: 1) { lua.logger.info("lua: \(line)") }
    return 0
}
