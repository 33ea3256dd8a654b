import EnchufeCore
import Foundation
import Testing

/// Lua and templates in flow files are checked at load time, with the file line of the problem.
@Suite struct ScriptValidationTests {
    let registry = NodeRegistry(CoreNodes.specs)

    func messages(_ text: String) -> [String] {
        FlowLoader(registry: registry, environment: [:]).load(text: text, file: "flows/s.yaml").1.map(\.description)
    }

    func flow(_ node: String) -> String {
        """
        flow: s
        nodes:
          - id: in
            type: schedule
            every: 1h
            to: [n]
        \(node)
        """
    }

    @Test func aLuaSyntaxErrorInAScriptNamesTheFileLine() {
        let problems = messages(flow("""
              - id: n
                type: lua
                script: |
                  function process(msg)
                    local x = = 1
                    return msg
                  end
            """))
        #expect(problems == ["flows/s.yaml:11:1: error: Lua syntax error in 'script': unexpected symbol near '='"], "\(problems)")
    }

    @Test func aLuaSyntaxErrorInAnExpressionNamesItsLine() {
        let problems = messages(flow("""
              - id: n
                type: switch
                cases:
                  - when: msg.payload.price <
                    to: [in2]
                  - when: "true"
                    to: [in2]
              - id: in2
                type: log
            """))
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("flows/s.yaml:10:") == true, "\(problems)")
        #expect(problems.first?.contains("Lua syntax error in 'cases.0.when'") == true, "\(problems)")
    }

    @Test func templatesAndComputedValuesAreChecked() {
        let problems = messages(flow("""
              - id: n
                type: map
                set:
                  payload.a: "{payload.x"
                  payload.b: "{nowhere.x}"
                  payload.c: "=msg.payload.w /"
                  topics: "x"
            """))
        #expect(problems.contains { $0.hasPrefix("flows/s.yaml:10:") && $0.contains("unclosed '{'") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("flows/s.yaml:11:") && $0.contains("must start with one of") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("flows/s.yaml:12:") && $0.contains("Lua syntax error in 'set.payload.c'") }, "\(problems)")
    }

    @Test func aScriptWithoutProcessIsRefusedAtLoadTime() {
        let problems = messages(flow("""
              - id: n
                type: lua
                script: |
                  function handle(msg) return msg end
            """))
        #expect(problems.first?.contains("the script does not define function process(msg)") == true, "\(problems)")
    }

    @Test func aScriptThatFailsAtItsTopLevelIsRefusedWithItsLine() {
        let problems = messages(flow("""
              - id: n
                type: lua
                script: |
                  local config = nil
                  local rate = config.rate
                  function process(msg) return msg end
            """))
        #expect(problems.first?.contains("flows/s.yaml:11: attempt to index a nil value") == true, "\(problems)")
    }

    @Test func mapPathsAreChecked() {
        let problems = messages(flow("""
              - id: n
                type: map
                rename: { payload.a: readings.b }
                delete: [attributes]
            """))
        #expect(problems.count == 2, "\(problems)")
    }
}
