@testable import EnchufeCore
import Foundation
import Testing

/// A `lua` node's script is given only the parts of a message and the fields of its readings it
/// names (`ScriptNames`, `LuaGivenTables.swift`). It must not be able to tell: each script below
/// runs on the same generated messages in two engines, one leaving out what the script does not
/// name and one giving it everything, and every result (or error) must be the same — including a
/// script that keeps a message or a reading between calls and returns it later, across the
/// completions of the record of given tables.
@Suite struct LuaGivenTablesTests {
    @Test(arguments: [
        ("function process(msg) return msg end", ScriptNames(message: [], reading: [])),
        ("function process(msg)\n  for _, r in ipairs(msg.readings) do r.value = r.value / 1000 r.unit = \"kW\" end\n  return msg\nend",
         ScriptNames(message: .readings, reading: [.value, .unit])),
        ("-- the topic is kept\nfunction process(m) return { payload = m.payload } end", ScriptNames(message: [.payload, .topic], reading: [])),
        ("function process(msg) msg.readings[1].ts = 'x' return msg end", ScriptNames(message: .readings, reading: .ts)),
        ("function process(msg) for k, v in pairs(msg) do end return msg end", .all),
        ("function process(msg) local k = 'unit' msg.readings[1][k] = 'W' return msg end", .all),
        ("function process(msg) return msg[\"payload\"] end", .all),
        ("function process(msg) return rawget(msg, 'pay' .. 'load') end", .all),
        ("function process(msg) return load('return 1')() end", .all),
        ("function process(msg) local s = [[series]] return msg end", .all),
        ("function process(msg) return _ENV.msg end", .all),
    ])
    func aScriptIsGivenWhatItNames(_ script: String, names: ScriptNames) {
        #expect(ScriptNames(script: script) == names, "\(script)")
    }

    static let scripts = [
        "function process(msg) return msg end",
        "function process(msg)\n  for _, r in ipairs(msg.readings) do r.value = r.value / 1000 r.unit = \"kW\" end\n  return msg\nend",
        // The message before, returned a call later (and so across each completion of the record).
        "local last\nfunction process(msg) local out = last last = msg return out end",
        // A reading kept from the message before, added to this one.
        "local kept\nfunction process(msg)\n  local r = msg.readings[1]\n  if kept then table.insert(msg.readings, kept) end\n  kept = r\n  return msg\nend",
        "function process(msg) return { readings = msg.readings } end",
        "function process(msg) return { msg, msg } end",
        "function process(msg) local rs = msg.readings if #rs >= 2 then rs[1], rs[2] = rs[2], rs[1] end return msg end",
        "function process(msg) for _, r in ipairs(msg.readings) do r.unit = nil end msg.topic = 'x' return msg end",
        "function process(msg) if #msg.readings == 2 then error('two') end return msg end",
        "function process(msg) return msg.readings[1] end",
        "function process(msg) msg.extra = 1 return msg end",
        "function process(msg) local r = msg.readings[1] if r then return { readings = { r, r } } end end",
        "function process(msg) return setmetatable({ readings = msg.readings }, { __index = function() error('no') end }) end",
        "local n = 0\nfunction process(msg) n = n + 1 if n % 3 == 0 then return { topic = 'mine', readings = { { series = 's', quantity = 'q', ts = n, value = n } } } end return msg end",
    ]

    static func messages(_ count: Int) -> [Message] {
        var random = SplitMix(seed: 2026_12_05)
        return (0..<count).map { i in
            let base = Date(timeIntervalSince1970: 1_735_689_600 + Double(i) * 0.125)
            let payload: JSONValue = i % 5 == 0 ? .array([1, 2, 3]) : i % 7 == 0 ? .null : ["w": .number(Double(i % 5000)), "name": "inv"]
            return Message(
                payload: payload, topic: i % 4 == 0 ? nil : "site/inv-\(i % 9)/power", attributes: i % 3 == 0 ? [:] : ["device": "inv-\(i % 9)"],
                readings: (0..<Int.random(in: 0...3, using: &random)).map { r in
                    Reading(
                        tenant: i % 6 == 0 ? "coop" : "", series: "device:inv-\(r)", quantity: r == 2 ? "energy" : "power",
                        ts: base.addingTimeInterval(Double(r) * 900), resolution: r == 1 ? "PT15M" : "PT0S", value: Double(i % 97) + 0.5,
                        unit: "W", quality: i % 11 == 0 ? .estimated : .measured, source: i % 2 == 0 ? "flow/node" : "",
                        tags: i % 8 == 0 ? ["period": "P\(r + 1)"] : [:])
                })
        }
    }

    @Test(arguments: scripts)
    func aScriptGivenOnlyWhatItNamesReturnsWhatItWouldWithEverything(_ script: String) throws {
        func engine(names: ScriptNames?) throws -> (LuaEngine, LuaEngine.Function) {
            let lua = try LuaEngine()
            try lua.run(try lua.compile(LuaSource(text: script, file: "flow.yaml")))
            var process = try #require(lua.globalFunction("process"))
            process.names = names ?? ScriptNames(script: script)
            return (lua, process)
        }
        let (given, named) = try engine(names: nil)
        let (whole, all) = try engine(names: .all)
        var leftOut = 0
        // More messages than one record holds: completions happen while the script keeps tables.
        for message in Self.messages(LuaEngine.sweepMessages * 2 + 300) {
            let a = Result { try given.process(named, message) }
            if !given.givenMessages.isEmpty { leftOut += 1 }
            let b = Result { try whole.process(all, message) }
            switch (a, b) {
            case (.success(let x), .success(let y)):
                #expect(x.map(\.json) == y.map(\.json), "\(script) on \(message.json)")
                #expect(x.map(\.readings) == y.map(\.readings), "\(script) on \(message.json)")
            case (.failure(let x), .failure(let y)):
                #expect("\(x)" == "\(y)", "\(script)")
            default:
                Issue.record("\(script) on \(message.json): \(a) against \(b)")
            }
        }
        // Scripts whose results are read the general way complete what was left out at every call.
        let general = ["{ msg, msg }", "msg.readings[1] end", "msg.extra"].contains { script.contains($0) }
        if !general { #expect(leftOut > LuaEngine.sweepMessages, "\(leftOut) calls with parts left out for \(script)") }
    }
}
