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
        fileprivate let ref: Int32
    }

    public let limits: LuaLimits
    let logger: Logger
    let state: OpaquePointer
    private let budget: UnsafeMutablePointer<enchufe_lua_budget>
    private let lock = NSLock()
    /// The value JSON `null` becomes (Lua tables cannot hold nil): the global `null`.
    private(set) var nullRef: Int32 = 0
    /// The metatable of tables made from JSON arrays, so an empty one goes back as `[]`.
    private(set) var arrayMetatableRef: Int32 = 0

    static let registry = enchufe_lua_registryindex()

    public init(limits: LuaLimits = LuaLimits(), logger: Logger = Logger(label: "enchufe.lua")) throws {
        self.limits = limits
        self.logger = logger
        budget = .allocate(capacity: 1)
        budget.initialize(to: enchufe_lua_budget(used: 0, limit: max(limits.memoryBytes, 1 << 20), enforce: 0))
        guard let state = enchufe_lua_newstate(budget) else {
            budget.deallocate()
            throw LuaError(.memoryLimit, "could not create a Lua state")
        }
        self.state = state
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
        try compile(source.expressionChunk())
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
            let top = lua_gettop(state)
            defer { lua_settop(state, top) }
            lua_rawgeti(state, Self.registry, lua_Integer(function.ref))
            push(message)
            if let item { push(item) } else { lua_pushnil(state) }
            try protectedCall(arguments: 2, results: 1)
            return try read()
        }
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
    private func protectedCall(arguments: Int32, results: Int32) throws {
        budget.pointee.enforce = 1
        enchufe_lua_limit_instructions(state, Int32(clamping: limits.instructions))
        let status = enchufe_lua_pcall(state, arguments, results, 0)
        enchufe_lua_limit_instructions(state, 0)
        budget.pointee.enforce = 0
        guard status != LUA_OK else { return }
        let message = string(at: -1) ?? "error object is a \(typeName(at: -1)) value"
        enchufe_lua_pop(state, 1)
        if status == LUA_ERRMEM {
            throw LuaError(.memoryLimit, "memory limit of \(limits.memoryBytes >> 20) MiB exceeded")
        }
        if message.hasSuffix("instruction limit exceeded") {
            throw LuaError(.instructionLimit, "\(message) (\(limits.instructions) instructions per call)")
        }
        throw LuaError(.runtime, message)
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

        try load(LuaSource(text: Self.prelude, file: "sandbox"))
        lua_pushlightuserdata(state, Unmanaged.passUnretained(self).toOpaque())
        lua_pushcclosure(state, luaLog, 1)
        lua_rawgeti(state, Self.registry, lua_Integer(arrayMetatableRef))
        try protectedCall(arguments: 2, results: 0)
    }

    /// Runs once in every new state, with full libraries, and takes away what scripts must not have.
    private static let prelude = """
        local log, array_mt = ...
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
        array = function(t) return setmetatable(t or {}, array_mt) end
        """
}

/// `print` in scripts: one line in the node's log.
private let luaLog: lua_CFunction = { state in
    guard let state, let engine = lua_touserdata(state, enchufe_lua_registryindex() - 1) else { return 0 }
    let lua = Unmanaged<LuaEngine>.fromOpaque(engine).takeUnretainedValue()
    if let line = lua.string(at: 1) { lua.logger.info("lua: \(line)") }
    return 0
}
