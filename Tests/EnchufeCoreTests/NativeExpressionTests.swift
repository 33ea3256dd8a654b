@testable import EnchufeCore
import Foundation
import Testing

/// The expressions `map` and `filter` evaluate without Lua must give Lua's own answers: checked on
/// generated expressions over a payload of integers, floats, zeros, booleans, a string and a null,
/// against the same expression run by Lua 5.4. Where the native evaluator answers, Lua gives the
/// same value; where Lua raises an error, the native one does not answer (Lua is asked and raises it).
@Suite struct NativeExpressionTests {
    static let payload: JSONValue = [
        "a": 7, "b": -3, "big": 9_007_199_254_740_993, "huge": 1e300, "f": 2.5, "g": -0.75, "z": 0, "zf": 0.5,
        "t": true, "no": false, "s": "12", "n": .null, "nested": ["x": 4, "y": -1.5],
    ]
    static let message = Message(payload: payload, topic: "site/inv-1/power")

    struct Generator {
        var random: SplitMix
        let leaves = [
            "msg.payload.a", "msg.payload.b", "msg.payload.big", "msg.payload.huge", "msg.payload.f", "msg.payload.g", "msg.payload.z",
            "msg.payload.zf", "msg.payload.t", "msg.payload.no", "msg.payload.s", "msg.payload.n", "msg.payload.nested.x",
            "msg.payload.nested.y", "msg.payload.missing", "0", "1", "2", "3", "10", "-1", "1000", "0.5", "1e3", ".25", "7.0",
            "9223372036854775807", "9223372036854775808", "true", "false",
        ]
        let binary = ["+", "-", "*", "/", "//", "%", "^", "==", "~=", "<", "<=", ">", ">=", "and", "or"]

        mutating func expression(depth: Int) -> String {
            switch depth == 0 ? 0 : Int.random(in: 0..<6, using: &random) {
            case 0, 1: return leaves.randomElement(using: &random)!
            case 2: return (Bool.random(using: &random) ? "- " : "not ") + expression(depth: depth - 1)
            case 3: return "(" + expression(depth: depth - 1) + ")"
            default:
                return expression(depth: depth - 1) + " " + binary.randomElement(using: &random)! + " " + expression(depth: depth - 1)
            }
        }
    }

    @Test func generatedExpressionsGiveLuasAnswers() throws {
        let lua = try LuaEngine()
        var generator = Generator(random: SplitMix(seed: 2026_12_03))
        var answered = 0, deferred = 0, luaErrors = 0
        for _ in 0..<20_000 {
            let text = generator.expression(depth: 4)
            let expected: JSONValue?
            do {
                expected = try lua.evaluate(try lua.compileExpression(LuaSource(text: text, file: "gen.yaml")), message: Self.message)
            } catch is LuaError {
                expected = nil
                luaErrors += 1
            }
            guard let native = NativeExpression(text) else {
                Issue.record("the subset covers every generated expression, not \(text)")
                continue
            }
            guard let value = native.evaluate(Self.message) else {
                deferred += 1
                continue
            }
            answered += 1
            #expect(value == expected, "\(text)")
            if let e = expected, case .number(let x) = e, case .number(let y) = value {
                #expect(x.sign == y.sign, "\(text): the sign of zero")
            }
        }
        // The check means something only if both sides are exercised.
        #expect(answered > 5_000 && deferred > 1_000 && luaErrors > 1_000, "answered \(answered), deferred \(deferred), Lua errors \(luaErrors)")
    }

    @Test(arguments: [
        "msg.payload.wh / 1000", "msg.payload.w > 0", "msg.payload.w % 10 ~= 0", "-(msg.payload.a ^ 2)", "not msg.payload.ok",
        "(msg.payload.a + 1) * 2 >= 3 and msg.payload.b < 0 or false",
    ])
    func commonExpressionsAreEvaluatedWithoutLua(_ text: String) {
        #expect(NativeExpression(text) != nil)
    }

    @Test(arguments: [
        "msg.topic", "msg.payload.s .. 'x'", "#msg.readings", "math.floor(msg.payload.w)", "msg.payload['w']", "0x10 + 1",
        "msg.payload.w == nil", "'a' < 'b'", "msg.payload.a & 1", "msg.payload.a -- note", "--1", "item.x", "msg.payload.and",
    ])
    func otherExpressionsAreLeftToLua(_ text: String) {
        #expect(NativeExpression(text) == nil)
    }

    @Test func integerArithmeticFollowsLua() {
        func value(_ text: String) -> JSONValue? { NativeExpression(text)?.evaluate(Self.message) }
        #expect(value("7 // 2") == 3)
        #expect(value("-7 // 2") == -4)
        #expect(value("-7 % 3") == 2)
        #expect(value("7 % -3") == -2)
        #expect(value("7.5 % -2") == -0.5)
        #expect(value("7 / 2") == 3.5)
        #expect(value("9223372036854775807 + 1") == .number(Double(Int64.min)), "integers wrap around")
        #expect(value("1 // 0") == nil, "Lua raises the error")
        #expect(value("1 % 0") == nil)
        #expect(value("1.0 // 0") == nil, "infinity: JSON cannot hold it, Lua says so")
        #expect(value("msg.payload.t + 1") == nil)
        #expect(value("msg.payload.t < msg.payload.no") == nil)
        #expect(value("msg.payload.t == 1") == false)
        #expect(value("1 == 1.0") == true)
        #expect(value("msg.payload.missing > 1") == nil)
    }
}
