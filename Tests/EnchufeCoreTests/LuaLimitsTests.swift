import CLua
@testable import EnchufeCore
import Foundation
import TestSupport
import Testing

/// What the outside audit found running for 45 s and more inside one call, each now ended by the
/// call's time limit (or refused outright) while the state stays usable.
@Suite("Lua limits")
struct LuaLimitsTests {
    static let limits = LuaLimits(instructions: 1_000_000, memoryBytes: 16 << 20, duration: .milliseconds(300))

    func run(_ text: String, limits: LuaLimits = limits) throws -> JSONValue {
        let lua = try LuaEngine(limits: limits)
        let process = try lua.compileExpression(LuaSource(text: "(function() \(text) end)()", file: "flow.yaml", firstLine: 3))
        return try lua.evaluate(process, message: Message(payload: ["body": .string("a" + String(repeating: " ", count: 100_000) + "b")]))
    }

    /// Each attempt ends with a limit error within a few times the limit, never minutes.
    static let attempts: [(String, LuaError.Kind)] = [
        ("return table.move({}, 1, 1 << 53, 1, {})", .runtime),
        ("return string.find(string.rep('a', 1e5), '.-.-.-.-.-.-.-b')", .timeLimit),
        ("return msg.payload.body:match('^%s*(.-)%s*$')", .timeLimit),
        ("while true do pcall(function() while true do end end) end", .instructionLimit),
        ("while true do pcall(string.find, string.rep('a', 1e5), '.-.-.-.-.-.-.-b') end", .timeLimit),
        ("local co = coroutine.wrap(function() while true do end end) while true do pcall(co) end", .instructionLimit),
        ("setmetatable({}, {__gc = function() while true do end end}) collectgarbage() return 1", .runtime),
        ("while true do local ok = xpcall(function() while true do end end, function() while true do end end) end", .instructionLimit),
        ("return table.concat(setmetatable({}, {__index = function() return '' end}), '', 1, 1 << 40)", .runtime),
    ]

    @Test(arguments: attempts)
    func aCallThatWouldRunForMinutesEndsWithinItsLimit(_ attempt: String, _ kind: LuaError.Kind) throws {
        let started = ContinuousClock.now
        let error = #expect(throws: LuaError.self) { try run(attempt) }
        let took = ContinuousClock.now - started
        #expect(error?.kind == kind, "\(error?.description ?? "no error")")
        #expect(took < .seconds(5), "took \(took)")
    }

    @Test func theTimeLimitNamesTheLineAndTheStateStaysUsable() throws {
        let lua = try LuaEngine(limits: Self.limits)
        let slow = try lua.compileExpression(LuaSource(text: "msg.payload.body:match('^%s*(.-)%s*$')", file: "flow.yaml", firstLine: 12))
        let big = Message(payload: ["body": .string("a" + String(repeating: " ", count: 100_000) + "b")])
        let error = #expect(throws: LuaError.self) { try lua.evaluate(slow, message: big) }
        #expect(error?.kind == .timeLimit)
        #expect(error?.description.contains("time limit exceeded (300ms per call)") == true, "\(error?.description ?? "")")
        // The same expression on a short body, and anything else, runs as before.
        #expect(try lua.evaluate(slow, message: Message(payload: ["body": "  trimmed  "])) == "trimmed")
        let fine = try lua.compileExpression(LuaSource(text: "1 + 1", file: "flow.yaml"))
        #expect(try lua.evaluate(fine, message: big) == 2)
    }

    @Test func anInstructionLimitCaughtByPcallStillEndsTheCall() throws {
        let error = #expect(throws: LuaError.self) {
            try run("local n = 0 while true do local ok = pcall(function() while true do end end) n = n + 1 end", limits: LuaLimits(instructions: 10_000, duration: .zero))
        }
        #expect(error?.kind == .instructionLimit)
    }

    @Test func noLimitsAtAllStillRuns() throws {
        #expect(try run("local n = 0 for i = 1, 2000000 do n = n + 1 end return n", limits: LuaLimits(instructions: 0, duration: .zero)) == 2_000_000)
    }

    @Test func theRefusedFunctionsStillWorkWithinBounds() throws {
        #expect(try run("return string.rep('ab', 3, ',')") == "ab,ab,ab")
        #expect(try run("return string.rep('', 5)") == "")
        #expect(try run("return #string.rep('', math.maxinteger)") == 0, "at once, not after 2^63 empty copies")
        #expect(try run("return table.concat(table.move({1, 2, 3}, 1, 3, 2), ',')") == "1,1,2,3")
        #expect(try run("local t = setmetatable({}, {__index = function(_, k) return k end}) return rawget(t, 1) == nil") == true)
        let gc = #expect(throws: LuaError.self) { try run("return setmetatable({}, {__gc = print})") }
        #expect(gc?.message.contains("__gc finalizers are not allowed") == true)
    }
}

/// The sandbox's pattern functions against Lua's own, on generated patterns and subjects: the same
/// results, and an error wherever Lua's gives one.
@Suite("Lua patterns")
struct LuaPatternTests {
    nonisolated(unsafe) static var lastErrorStore = ""
    var lastError: String { get { Self.lastErrorStore } nonmutating set { Self.lastErrorStore = newValue } }
    /// A plain Lua state with the standard string library, as the oracle.
    final class Oracle {
        let state: OpaquePointer
        init() {
            state = luaL_newstate()
            luaL_openlibs(state)
        }
        deinit { lua_close(state) }

        /// The results of `code` (a chunk returning values) as text, or "error".
        func run(_ code: String) -> String {
            let top = lua_gettop(state)
            defer { lua_settop(state, top) }
            guard luaL_loadstring(state, code) == LUA_OK, enchufe_lua_pcall(state, 0, LUA_MULTRET, 0) == LUA_OK else { return "error" }
            var parts: [String] = []
            for i in (top + 1)...max(top, lua_gettop(state)) where i > top {
                var length = 0
                if lua_type(state, i) == LUA_TNIL { parts.append("nil"); continue }
                luaL_tolstring(state, i, &length)
                parts.append(String(cString: lua_tolstring(state, -1, &length)))
                enchufe_lua_pop(state, 1)
            }
            return parts.joined(separator: "|")
        }
    }

    /// The same chunk in the sandbox.
    func sandboxed(_ lua: LuaEngine, _ code: String) -> String {
        do {
            let f = try lua.compileExpression(LuaSource(text: "(function() local r = table.pack(\(code)) for i = 1, r.n do r[i] = tostring(r[i]) end return table.concat(r, '|', 1, r.n) end)()", file: "p"))
            return try lua.evaluate(f, message: Message(payload: .null)).stringValue ?? "?"
        } catch {
            lastError = "\(error)"
            return "error"
        }
    }

    static func quoted(_ s: String) -> String {
        "\"" + s.unicodeScalars.map { $0 == "\"" || $0 == "\\" ? "\\" + String($0) : String($0) }.joined() + "\""
    }

    @Test func generatedPatternsMatchAsLuaMatchesThem() async throws {
        try await onOwnThread {
            let oracle = Oracle()
            var random = SeededRandom(seed: 54)
            let atoms = ["a", "b", ".", "%a", "%d", "%s", "%w", "%p", "%x", "%S", "[ab]", "[^a]", "[a-c]", "[%d_]", "[]]", "[^]a]",
                "%%", "%.", "%b()", "%f[%w]", "%1", "(", ")", "()", "^", "$", "-", "[", "%", "%z", "%B", "*"]
            let suffixes = ["", "", "", "*", "+", "-", "?"]
            let subjects = ["", "aab", "ab12 cd", "(a(b)c)", "  x  ", "a.b%c", "]a]", "abcabc", "THE (quick) fox", "1a2b3c", "\t\n a"]
            var compared = 0, errors = 0
            for _ in 0..<4000 {
                var pattern = ""
                for _ in 0..<random.int(1..<6) { pattern += atoms[random.int(0..<atoms.count)] + suffixes[random.int(0..<suffixes.count)] }
                let subject = subjects[random.int(0..<subjects.count)]
                let (s, p) = (Self.quoted(subject), Self.quoted(pattern))
                let start = [1, 2, -2, 0, 20][random.int(0..<5)]
                // A state of its own per pattern: each compiled call stays in its registry.
                let lua = try LuaEngine(limits: LuaLimits(instructions: 0, duration: .seconds(10)))
                let calls = [
                    "string.find(\(s), \(p))", "string.find(\(s), \(p), \(start))", "string.match(\(s), \(p))", "string.match(\(s), \(p), \(start))",
                    "string.gsub(\(s), \(p), '<%0>')", "string.gsub(\(s), \(p), '[%1]', 2)",
                    "string.gsub(\(s), \(p), function(...) return select('#', ...) .. (...) end)",
                    "string.gsub(\(s), \(p), {a = 'A', ab = false})",
                    "(function() local t = {} for a, b in string.gmatch(\(s), \(p)) do t[#t + 1] = tostring(a) .. ',' .. tostring(b) end return table.concat(t, ';') end)()",
                    "string.find(\(s), \(p), 1, true)",
                ]
                for call in calls {
                    let expected = oracle.run("return " + call)
                    #expect(sandboxed(lua, call) == expected, "\(call) \(lastError)")
                    compared += 1
                    if expected == "error" { errors += 1 }
                }
            }
            #expect(errors > 1000 && errors < compared / 2, "\(errors) of \(compared) calls are errors: the patterns should be a mix")
        }
    }
}
