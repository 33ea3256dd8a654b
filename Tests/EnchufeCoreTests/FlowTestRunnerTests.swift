@testable import EnchufeCore
import Foundation
import Testing

/// The flow-test runner, and through it the behaviour of every generic transform: the cases are the
/// `*.test.yaml` files in `Flows/`, each a specification a person can read.
@Suite("Flow tests")
struct FlowTestRunnerTests {
    static let flows = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Flows").path
    let tests = FlowTests(registry: NodeRegistry(CoreNodes.specs), environment: [:], timeout: .seconds(30))

    static var testFiles: [String] { (try? FlowTests.testFiles(in: [flows])) ?? [] }

    @Test func theSpecificationFilesAreFound() {
        #expect(Self.testFiles.map { URL(fileURLWithPath: $0).lastPathComponent }.sorted() == ["lua.test.yaml", "readings.test.yaml", "transforms.test.yaml"])
    }

    @Test(arguments: testFiles)
    func everyCasePasses(file: String) async throws {
        let results = await tests.run(file: file)
        #expect(!results.isEmpty)
        for result in results {
            #expect(result.passed, "\(result.location.line): \(result.name)\n\(result.failures.joined(separator: "\n"))")
        }
    }

    func temporaryFlow(_ flow: String, tests: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-flowtest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try flow.write(to: dir.appendingPathComponent("f.yaml"), atomically: true, encoding: .utf8)
        try tests.write(to: dir.appendingPathComponent("f.test.yaml"), atomically: true, encoding: .utf8)
        return dir.appendingPathComponent("f.test.yaml").path
    }

    static let doubling = """
        flow: f
        nodes:
          - id: in
            type: schedule
            every: 1h
            to: [double]
          - id: double
            type: map
            set: { payload.v: "=msg.payload.v * 2" }
        """

    @Test func aWrongExpectationFailsAndSaysWhereAndWhy() async throws {
        let file = try temporaryFlow(Self.doubling, tests: """
            tests:
              - name: doubles
                node: double
                input: [{ payload: { v: 2 } }]
                expect:
                  - equals: [{ payload: { v: 5 } }]
            """)
        let results = await tests.run(file: file)
        #expect(results.count == 1)
        #expect(results.first?.passed == false)
        #expect(results.first?.failures.first?.contains("f.test.yaml:6:9: messages on double/out #1 is {\"payload\":{\"v\":4}}, expected {\"payload\":{\"v\":5}}") == true, "\(results)")
    }

    @Test func countAndContainsFailToo() async throws {
        let file = try temporaryFlow(Self.doubling, tests: """
            tests:
              - name: counts
                node: double
                input: [{ payload: { v: 1 } }, { payload: { v: 2 } }]
                expect:
                  - count: 3
                    contains: [{ payload: { v: 3 } }]
            """)
        let failures = await tests.run(file: file).flatMap(\.failures)
        #expect(failures.contains { $0.contains("expected 3 messages on double/out, got 2") })
        #expect(failures.contains { $0.contains("no messages on double/out matches {\"payload\":{\"v\":3}}") })
    }

    @Test func problemsInATestFileAreReportedWithTheirPosition() async throws {
        let file = try temporaryFlow(Self.doubling, tests: """
            tests:
              - name: typo
                nod: double
                input: [{ payload: 1 }]
                expect: [{ count: 1 }]
              - name: unknown node
                node: triple
                input: [{ payload: 1 }]
                expect: [{ count: 1 }]
            """)
        let results = await tests.run(file: file)
        let failures = results.flatMap(\.failures)
        #expect(failures.contains { $0.hasSuffix("f.test.yaml:3:5: error: unknown key 'nod' in test case (did you mean 'node'?)") }, "\(failures)")
        #expect(results.allSatisfy { !$0.passed })
    }

    @Test func anUnknownNodeFailsTheCaseWithAHint() async throws {
        let file = try temporaryFlow(Self.doubling, tests: """
            tests:
              - name: unknown node
                node: dobule
                input: [{ payload: 1 }]
                expect: [{ count: 1 }]
            """)
        let failures = await tests.run(file: file).flatMap(\.failures)
        #expect(failures.first?.contains("no node 'dobule' in flow 'f' (did you mean 'double'?)") == true, "\(failures)")
    }

    @Test func aFlowThatNeverGoesQuietFailsByTheTimeoutInsteadOfHanging() async throws {
        struct Forever: SourceNode {
            func run(_ context: SourceContext) async throws {
                try await withTaskCancellationHandler {
                    try await Task.sleep(for: .seconds(3600))
                } onCancel: {}
            }
        }
        var registry = NodeRegistry(CoreNodes.specs)
        registry.register(NodeSpec(type: "forever", kind: .source, summary: "waits on the network", options: [], example: "", make: { _ in .source(Forever()) }))
        let file = try temporaryFlow("""
            flow: f
            nodes:
              - id: in
                type: forever
                to: [out]
              - id: out
                type: log
            """, tests: """
            tests:
              - name: waits
                node: flow
                expect: [{ node: in, count: 0 }]
            """)
        let quick = FlowTests(registry: registry, environment: [:], timeout: .milliseconds(200))
        let failures = await quick.run(file: file).flatMap(\.failures)
        #expect(failures.contains { $0.contains("did not go quiet within 200ms") }, "\(failures)")
    }

    @Test func cannedAnswersAreFoundByNodeURLOrType() {
        let answers = CannedAnswers(["prices": Data("a".utf8), "/api/x?d=1": Data("b".utf8), "/api/x": Data("c".utf8), "redata.prices": Data("d".utf8)])
        #expect(answers.answer(node: "prices", type: "redata.prices", url: URL(string: "https://h/api/x?d=1")) == Data("a".utf8))
        #expect(answers.answer(node: "other", type: "redata.prices", url: URL(string: "https://h/api/x?d=1")) == Data("b".utf8))
        #expect(answers.answer(node: "other", type: "redata.prices", url: URL(string: "https://h/api/x?d=2")) == Data("c".utf8))
        #expect(answers.answer(node: "other", type: "redata.prices", url: URL(string: "https://h/api/y")) == Data("d".utf8))
        #expect(answers.answer(node: "other", type: "esios", url: nil) == nil)
    }
}
