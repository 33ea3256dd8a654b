@testable import EnchufeCore
import Foundation
import Logging
import Testing

@Suite("Lua engine")
struct LuaEngineTests {
    let message = Message(
        payload: ["w": 1500, "device": "inv-07", "tags": [], "note": .null],
        topic: "site/inv-07/power", attributes: ["origin": "mqtt"],
        readings: [Reading(series: "device:inv-07", quantity: "power", ts: Date(timeIntervalSince1970: 1_700_000_000), resolution: "PT0S", value: 1.5, unit: "kW")])

    func expression(_ text: String, limits: LuaLimits = LuaLimits()) throws -> JSONValue {
        let lua = try LuaEngine(limits: limits)
        return try lua.evaluate(try lua.compileExpression(LuaSource(text: text, file: "flow.yaml", firstLine: 7)), message: message)
    }

    func script(_ text: String, limits: LuaLimits = LuaLimits()) throws -> (LuaEngine, LuaEngine.Function) {
        let lua = try LuaEngine(limits: limits)
        try lua.run(try lua.compile(LuaSource(text: text, file: "flow.yaml", firstLine: 10)))
        return (lua, try #require(lua.globalFunction("process")))
    }

    @Test func expressionsSeeTheWholeMessage() throws {
        #expect(try expression("msg.payload.w / 1000") == 1.5)
        #expect(try expression("msg.payload.device .. '@' .. msg.topic") == "inv-07@site/inv-07/power")
        #expect(try expression("msg.attributes.origin") == "mqtt")
        #expect(try expression("msg.readings[1].series .. ' ' .. msg.readings[1].ts") == "device:inv-07 2023-11-14T22:13:20Z")
        #expect(try expression("msg.payload.w > 1000 and msg.payload.note == null") == true)
    }

    /// An expression is given only the parts of the message it names (making `msg` costs more than
    /// most expressions); any use the scan cannot follow gives the whole message.
    @Test(arguments: [
        ("msg.payload.w / 1000", MessageFields.payload),
        ("msg.payload.w > 0 and msg.topic ~= nil", [.payload, .topic]),
        ("msg . attributes . origin", .attributes),
        ("#msg.readings", .readings),
        ("'msg' .. msg.payload.device", .payload),
        ("\"say msg[1]\" .. x.msg", []),
        ("mymsg.readings or msg2", []),
        ("msg['payload']", .all),
        ("msg", .all),
        ("next(msg)", .all),
        ("msg.other", .all),
        ("msg..'x'", .all),
        ("msg.payload -- msg.readings", .all),
        ("[[msg]] .. msg.payload", .all),
    ] as [(String, MessageFields)])
    func expressionsAreGivenTheFieldsTheyName(_ text: String, fields: MessageFields) throws {
        #expect(MessageFields.read(byExpression: text) == fields)
    }

    @Test func anExpressionGivenPartOfTheMessageReadsWhatTheWholeOneGives() throws {
        let lua = try LuaEngine()
        for text in ["msg.payload.w / 1000", "msg.topic", "msg.attributes.origin", "msg.readings[1].series", "msg.payload.w > 1 and #msg.readings"] {
            var whole = try lua.compileExpression(LuaSource(text: text, file: "flow.yaml"))
            let part = try lua.evaluate(whole, message: message)
            whole.fields = .all
            #expect(try lua.evaluate(whole, message: message) == part, "\(text)")
            #expect(whole.fields != MessageFields.read(byExpression: text))
        }
    }

    @Test func templatesReadTheTopicsLevels() throws {
        func level(_ n: String, of topic: String?) throws -> JSONValue {
            try ValueTemplate(.string("{topic.\(n)}"), file: "flow.yaml", line: 1).value(for: Message(topic: topic))
        }
        #expect(try level("1", of: "site/inv-07/power") == "site")
        #expect(try level("2", of: "site/inv-07/power") == "inv-07")
        #expect(try level("3", of: "site/inv-07/power") == "power")
        #expect(try level("4", of: "site/inv-07/power") == .null)
        #expect(try level("2", of: "a//c") == "")
        #expect(try level("3", of: "a/b/") == "")
        #expect(try level("1", of: "") == "")
        #expect(try level("2", of: nil) == .null)
        #expect(try level("2", of: "cañada/medidor-ñ/€") == "medidor-ñ")
        #expect(try level("3", of: "cañada/medidor-ñ/€") == "€")
        #expect(try level("0", of: "site/inv-07") == .null)
        #expect(try level("x", of: "site/inv-07") == .null)
    }

    @Test func valuesKeepTheirJSONShape() throws {
        #expect(try expression("msg.payload") == message.payload)
        #expect(try expression("{1, 2, {a = null}}") == [1, 2, ["a": .null]])
        #expect(try expression("array()") == .array([]))
        #expect(try expression("{}") == .object([:]))
        #expect(try expression("3 // 2") == 1)
    }

    @Test func valuesJSONCannotHoldAreErrors() throws {
        #expect(throws: LuaError.self) { try expression("print") }
        #expect(throws: LuaError.self) { try expression("0/0") }
        let cycle = #expect(throws: LuaError.self) { try expression("(function() local t = {} t.self = t return t end)()") }
        #expect(cycle?.message.contains("deeper than") == true)
    }

    @Test func scriptsKeepStateAcrossCalls() throws {
        let (lua, process) = try script("""
            local seen = 0
            function process(msg)
              seen = seen + 1
              msg.payload = { count = seen }
              return msg
            end
            """)
        var last: [Message] = []
        for _ in 0..<3 { last = try lua.call(process, message: message) { try lua.messages(at: -1) } }
        #expect(last.first?.payload == ["count": 3])
        #expect(last.first?.topic == message.topic)
        #expect(last.first?.readings == message.readings)
    }

    @Test func processReturnsNothingOneOrMany() throws {
        let (lua, process) = try script("""
            function process(msg)
              if msg.payload.w == 0 then return nil end
              if msg.payload.w < 0 then return {} end
              local out = {}
              for i = 1, msg.payload.w do out[i] = { payload = i, topic = "n" } end
              return out
            end
            """)
        func run(_ w: Int) throws -> [Message] {
            try lua.call(process, message: Message(payload: ["w": .number(Double(w))])) { try lua.messages(at: -1) }
        }
        #expect(try run(0).isEmpty)
        #expect(try run(-1).isEmpty)
        #expect(try run(3).map(\.payload) == [1, 2, 3])
    }

    @Test func aReturnedNonMessageIsAnError() throws {
        let (lua, process) = try script("function process(msg) return msg.payload end")
        let error = #expect(throws: LuaError.self) { try lua.call(process, message: message) { try lua.messages(at: -1) } }
        #expect(error?.message.contains("not a message") == true)
    }

    /// The hub reads a returned table outside the protected call: a metamethod the script put on it
    /// must not run there (an error raised outside a protected call aborts the process).
    @Test func metamethodsOnAReturnedMessageDoNotRunWhileItIsRead() throws {
        let (lua, process) = try script("""
            function process(msg)
              local fail = { __index = function() error("read") end, __newindex = function() error("write") end }
              local reading = setmetatable({ series = "s", quantity = "q", ts = 0, value = 1 }, fail)
              return setmetatable({ payload = setmetatable({ w = 1 }, fail), readings = { reading } }, fail)
            end
            """)
        let out = try lua.call(process, message: message) { try lua.messages(at: -1, like: message) }
        #expect(out.first?.payload == ["w": 1])
        #expect(out.first?.topic == nil)
        #expect(out.first?.readings.map(\.series) == ["s"])
    }

    @Test func runtimeErrorsNameTheFlowFileLine() throws {
        let (lua, process) = try script("""
            function process(msg)
              return msg.payload.missing.field
            end
            """)
        let error = #expect(throws: LuaError.self) { try lua.call(process, message: message) { try lua.messages(at: -1) } }
        #expect(error?.message.hasPrefix("flow.yaml:11:") == true, "\(String(describing: error))")
    }

    @Test func syntaxErrorsNameTheFlowFileLine() throws {
        let lua = try LuaEngine()
        let error = #expect(throws: LuaError.self) {
            try lua.compile(LuaSource(text: "function process(msg)\n  return msg +\nend", file: "flows/x.yaml", firstLine: 20))
        }
        #expect(error?.kind == .syntax)
        #expect(error?.position?.line == 22)
        #expect(error?.message.hasPrefix("flows/x.yaml:22:") == true)
    }

    @Test(arguments: [
        ("io.open('/etc/passwd')", "global 'io'"),
        ("os.execute('true')", "field 'execute'"),
        ("require('socket')", "global 'require'"),
        ("dofile('/etc/passwd')", "global 'dofile'"),
        ("loadfile('/etc/passwd')", "global 'loadfile'"),
        ("debug.getinfo(1)", "global 'debug'"),
        ("string.dump(process)", "field 'dump'"),
        ("os.getenv('HOME')", "field 'getenv'"),
        ("os.remove('/tmp/x')", "field 'remove'"),
        ("load(string.char(27) .. 'LuaT', 'x', 'b')", "only text chunks"),
        ("assert(load(string.char(27) .. 'LuaT'))", "binary chunk"),
        ("package.loadlib('libc.so.6', 'system')", "global 'package'"),
    ])
    func sandboxEscapesAreStopped(attempt: String, expected: String) throws {
        let (lua, process) = try script("function process(msg)\n  \(attempt)\n  return msg\nend")
        let error = #expect(throws: LuaError.self) { try lua.call(process, message: message) { try lua.messages(at: -1) } }
        #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
        #expect(error?.message.contains("flow.yaml:11:") == true, "\(String(describing: error))")
    }

    @Test func timeFunctionsAreAllowed() throws {
        #expect(try expression("os.date('!%Y-%m-%d', 0)") == "1970-01-01")
        #expect(try expression("os.time({year = 2025, month = 1, day = 1, hour = 0}) > 0") == true)
    }

    @Test func aRunawayLoopHitsTheInstructionLimitAndTheStateStaysUsable() throws {
        let (lua, process) = try script("""
            function process(msg)
              if msg.payload.spin then
                while true do end
              end
              return msg
            end
            """, limits: LuaLimits(instructions: 100_000))
        let error = #expect(throws: LuaError.self) { try lua.call(process, message: Message(payload: ["spin": true])) { try lua.messages(at: -1) } }
        #expect(error?.kind == .instructionLimit)
        #expect(error?.message.hasPrefix("flow.yaml:12: instruction limit exceeded") == true, "\(String(describing: error))")
        #expect(try lua.call(process, message: message) { try lua.messages(at: -1) }.count == 1)
    }

    @Test func aMemoryBombHitsTheMemoryLimitAndTheStateStaysUsable() throws {
        let (lua, process) = try script("""
            local keep = {}
            function process(msg)
              if msg.payload.bomb == 1 then return { payload = string.rep("x", 1 << 30) } end
              if msg.payload.bomb == 2 then
                local s = "x"
                while true do s = s .. s end
              end
              if msg.payload.bomb == 3 then
                while true do keep[#keep + 1] = {} end
              end
              return msg
            end
            """, limits: LuaLimits(instructions: 0, memoryBytes: 4 << 20))
        for bomb in 1...3 {
            let error = #expect(throws: LuaError.self) { try lua.call(process, message: Message(payload: ["bomb": .number(Double(bomb))])) { try lua.messages(at: -1) } }
            #expect(error?.kind == .memoryLimit)
        }
        #expect(lua.memoryInUse <= 4 << 20)
        // Bomb 3 kept its garbage reachable, so the state stays near its limit; small calls still work.
        #expect(try lua.call(process, message: Message(payload: ["bomb": 0])) { try lua.messages(at: -1) }.count == 1)
    }

    @Test func printWritesToTheNodeLog() throws {
        let log = CapturedLog()
        let lua = try LuaEngine(logger: Logger(label: "t") { _ in CapturedLog.Handler(log: log) })
        try lua.run(try lua.compile(LuaSource(text: "function process(msg) print('seen', msg.payload.w, nil) return nil end", file: "f")))
        let process = try #require(lua.globalFunction("process"))
        #expect(try lua.call(process, message: message) { try lua.messages(at: -1) }.isEmpty)
        #expect(log.lines == ["info lua: seen\t1500\tnil"])
    }
}

/// The `lua` node reads a returned message table field by field where it can (`directMessage`);
/// what it reads must be exactly what the general reader (the table's JSON form, then a message)
/// makes of the same table. Checked on generated tables: well-formed messages and readings, and
/// fields missing, null, of the wrong type, unknown, not finite or not parseable.
@Suite struct LuaMessageReaderTests {
    struct Tables {
        var random: SplitMix

        mutating func pick(_ choices: [String]) -> String { choices.randomElement(using: &random)! }
        mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &random) < p }

        mutating func text(good: String) -> String {
            chance(0.85) ? "\"\(good)\"" : pick(["null", "42", "true", "{}", "0/0"])
        }

        mutating func reading() -> String {
            var fields: [String] = []
            if chance(0.95) { fields.append("series = \(text(good: "device:inv-\(Int.random(in: 1...9, using: &random))"))") }
            if chance(0.95) { fields.append("quantity = \(text(good: "power"))") }
            if chance(0.95) {
                fields.append("ts = " + pick(["\"2025-03-30T01:00:00Z\"", "\"2025-10-26T00:45:00.250Z\"", "1735689600", "1735689600.5", "\"yesterday\"", "null", "0/0", "true"]))
            }
            if chance(0.95) { fields.append("value = " + pick(["1", "-2.5", "1e300", "0", "0/0", "1/0", "\"7\"", "null", "math.maxinteger"])) }
            if chance(0.5) { fields.append("resolution = \(text(good: "PT15M"))") }
            if chance(0.5) { fields.append("unit = \(text(good: "kW"))") }
            if chance(0.4) { fields.append("quality = " + pick(["\"measured\"", "\"forecast\"", "\"guess\"", "null", "3"])) }
            if chance(0.3) { fields.append("tenant = \(text(good: "coop"))") }
            if chance(0.3) { fields.append("source = \(text(good: "f/n"))") }
            if chance(0.1) { fields.append("tags = " + pick(["{}", "array()", "{ period = \"P1\" }", "null", "\"P1\""])) }
            if chance(0.05) { fields.append(pick(["extra = 1", "extra = 0/0", "extra = print", "[1] = 2"])) }
            fields.shuffle(using: &random)
            return "{ " + fields.joined(separator: ", ") + " }"
        }

        mutating func message() -> String {
            var fields: [String] = []
            if chance(0.7) { fields.append("payload = " + pick(["{ w = 1500, on = true, name = \"inv\" }", "{ 1, 2, 3 }", "null", "42", "{ bad = 0/0 }", "\"text\""])) }
            if chance(0.6) { fields.append("topic = \(text(good: "site/inv-1/power"))") }
            if chance(0.3) { fields.append("attributes = " + pick(["{ device = \"inv-1\", n = 3 }", "{}", "array()", "null", "\"x\"", "{ gone = null }"])) }
            if chance(0.8) {
                let readings = (0..<Int.random(in: 0...3, using: &random)).map { _ in reading() }
                fields.append("readings = " + pick(["{ " + readings.joined(separator: ", ") + " }", "null", "{ a = 1 }", "\"none\""]))
            }
            if chance(0.05) { fields.append(pick(["extra = 1", "extra = print", "[1] = 2"])) }
            fields.shuffle(using: &random)
            return "{ " + fields.joined(separator: ", ") + " }"
        }
    }

    @Test func theFieldByFieldReaderAgreesWithTheGeneralOne() throws {
        let lua = try LuaEngine()
        var tables = Tables(random: SplitMix(seed: 2026_12_03))
        var direct = 0, general = 0
        for _ in 0..<5_000 {
            let table = tables.message()
            let function = try lua.compileExpression(LuaSource(text: table, file: "gen.yaml"))
            let (fast, slow) = try lua.call(function, message: Message()) {
                (lua.directMessage(at: -1), Result { try lua.generalMessages(at: -1) })
            }
            guard let fast else {
                general += 1
                continue
            }
            direct += 1
            switch slow {
            case .success(let messages):
                #expect(messages.count == 1 && messages.first?.json == fast.json, "\(table)")
            case .failure(let error):
                Issue.record("the general reader refuses what the direct one read: \(error) for \(table)")
            }
        }
        #expect(direct > 1_000 && general > 1_000, "direct \(direct), general \(general)")
    }

    /// Given the message a script was called with, the reader takes what the script left alone from
    /// it; what it reads must be what it reads without (and so what the general reader reads).
    /// Checked on generated messages and scripts that change nothing, or one or two parts of the
    /// message in a way that keeps or changes its value.
    @Test func whatTheScriptLeftAloneIsTakenFromItsMessageAndReadsTheSame() throws {
        let lua = try LuaEngine()
        var random = SplitMix(seed: 2026_12_05)
        func pick(_ choices: [String]) -> String { choices.randomElement(using: &random)! }
        let changes = [
            "", "", "m.payload.w = 7", "m.payload.w = m.payload.w + 0.0", "m.payload.name = 'x'", "m.payload.name = 'inv'",
            "m.payload.extra = 1", "m.payload = { w = 1500 }", "m.payload.list[2] = 9", "m.payload.list[4] = 4",
            "m.payload.nested.k = 'v2'", "m.payload.nested.k = nil", "m.payload.gone = nil", "m.payload.on = false",
            "m.topic = 'other'", "m.topic = 'site/inv-1/power'", "m.attributes.device = 'z'", "m.attributes.new = 'y'",
            "m.attributes.device = nil", "m.readings[1].series = 'device:other'", "m.readings[1].series = 'device:inv-1'",
            "m.readings[1].ts = '2025-01-01T00:00:00Z'", "m.readings[1].ts = m.readings[1].ts", "m.readings[1].unit = 'W'",
            "m.readings[1].value = 3", "m.readings[1].quality = 'estimated'", "table.remove(m.readings)",
            "m.readings[#m.readings + 1] = m.readings[1]", "m.readings[1], m.readings[2] = m.readings[2], m.readings[1]",
            "m.readings[2].ts = m.readings[1].ts", "m.readings[1].tenant = 'coop'",
        ]
        var hinted = 0
        for i in 0..<3_000 {
            let base = Date(timeIntervalSince1970: 1_735_689_600 + Double(i) * 0.125)
            let payload: JSONValue = i % 5 == 0 ? .array([1, 2, 3]) : i % 7 == 0 ? "text" :
                ["w": .number(Double(1500 + i % 3)), "on": true, "name": "inv", "list": [1, 2, 3], "nested": ["k": "v"], "gone": .null]
            let message = Message(
                payload: payload, topic: i % 4 == 0 ? nil : "site/inv-1/power", attributes: i % 3 == 0 ? [:] : ["device": "inv-1"],
                readings: (0..<(i % 4)).map { r in
                    Reading(series: "device:inv-\(r)", quantity: "power", ts: base.addingTimeInterval(Double(r) * 900), resolution: "PT15M", value: Double(r) + 0.5, unit: "kW")
                })
            let script = "(function(m) " + (0..<2).map { _ in "pcall(function() \(pick(changes)) end)" }.joined(separator: " ") + " return m end)(msg)"
            let function = try lua.compileExpression(LuaSource(text: script, file: "gen.yaml"))
            let (withOriginal, without) = try lua.call(function, message: message) {
                (lua.directMessage(at: -1, like: message), lua.directMessage(at: -1))
            }
            #expect(withOriginal?.json == without?.json, "\(script) on \(message.json)")
            #expect(withOriginal?.readings.map(\.ts) == without?.readings.map(\.ts), "\(script)")
            if withOriginal != nil { hinted += 1 }
        }
        #expect(hinted > 1_000, "\(hinted) read directly")
    }
}
