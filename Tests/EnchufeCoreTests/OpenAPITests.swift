import EnchufeCore
import Foundation
import Logging
import Testing
import TestSupport

@Suite struct OpenAPITests {
    @Test func theDocumentDescribesExactlyTheRoutesServed() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let hub = Hub(flows: [], registry: NodeRegistry(CoreNodes.specs), environment: EngineEnvironment(store: store, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }))
        let served = Set(HTTPServer.router(hub: hub, access: LocalAccess(host: "127.0.0.1")).routes.map { route -> String in
            // Hummingbird's `:name` and `**` are OpenAPI's `{name}` and, for webhooks, `{path}`.
            let path = route.path.description.split(separator: "/").map { part -> String in
                if part == "**" { return "{path}" }
                return part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
            }.joined(separator: "/")
            return "\(route.method.rawValue.lowercased()) /\(path)"
        })
        let paths = OpenAPI.document["paths"]?.objectValue ?? [:]
        let documented = Set(paths.flatMap { path, methods in (methods.objectValue ?? [:]).keys.map { "\($0) \(path)" } })
        #expect(!served.isEmpty)
        #expect(served == documented, "served but not documented: \(served.subtracting(documented).sorted()); documented but not served: \(documented.subtracting(served).sorted())")
    }

    @Test func theDocumentIsServedAsOpenAPI31() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let server = try await APIServer.start(store: store)
        defer { server.stop() }
        let answer = try await server.get("/openapi.json", key: nil)
        #expect(answer.status == 200 && answer.type.hasPrefix("application/json"))
        let document = try JSONValue.parse(answer.body)
        #expect(document["openapi"]?.stringValue == "3.1.0")
        let exports = document["paths"]?["/api/v1/exports/{name}"]?["get"]
        #expect(exports?["security"]?.arrayValue?.first?["bearer"]?.arrayValue?.first?.stringValue == "read")
        #expect(exports?["parameters"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["name", "from", "to"])
    }
}
