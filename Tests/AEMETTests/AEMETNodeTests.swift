@testable import AEMET
import EnchufeCore
import Foundation
import HTTPPull
import Synchronization
import TestSupport
import Testing

/// The AEMET nodes in running flows, against a local server answering like AEMET OpenData.
@Suite struct AEMETNodeTests {
    static var key: String { "eyJhbGciOiJIUzI1NiJ9.test-key.sig" }

    static func store() async throws -> SQLiteStore { try await PullFlows.memoryStore() }

    static func stored(_ store: any Store) async throws -> [Reading] {
        try await store.changes(tenant: "default", after: 0, limit: 100_000).map(\.reading)
    }

    static func flow(_ server: FixtureServer, node: String, key: String = AEMETNodeTests.key) -> String {
        """
        flow: weather
        nodes:
          - id: tick
            type: test.trigger
            to: [weather]
          - id: weather
            base_url: \(server.baseURL)
            api_key: \(key)
            requests_per_minute: 60000
            request_attempts: 2
            timeout: 2s
        \(node.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            to: [store]
          - id: store
            type: store.readings
        """
    }

    static func run(_ yaml: String, store: any Store, at now: String, metrics: HubMetrics = HubMetrics()) async throws -> VirtualClock {
        let clock = VirtualClock(start: ISO8601.date(now)!)
        try await PullFlows.run(yaml, specs: AEMETModule.specs, store: store, clock: clock, metrics: metrics)
        return clock
    }

    /// An envelope in AEMET's own spacing whose `datos` link points at `link` on the server `request` reached.
    static func envelope(_ request: FixtureServer.Request, link: String) -> String {
        let base = "http://" + (request.headers["host"] ?? "")
        return #"{\#n  "descripcion" : "exito",\#n  "estado" : 200,\#n  "datos" : "\#(base)/opendata/sh/\#(link)",\#n  "metadatos" : "\#(base)/opendata/sh/meta"\#n}"#
    }

    @Test func observationsAreFetchedInTwoStepsWithTheKeyOnlyInTheHeader() async throws {
        let data = try Fixtures.text("observacion-estacion-3195-2021")
        let server = try await FixtureServer.start { request in
            // AEMET labels its JSON text/plain and ISO-8859-15.
            if request.path.hasPrefix("/opendata/sh/") {
                return .init(headers: ["Content-Type": "text/plain;charset=ISO-8859-15"], body: Array(data.utf8))
            }
            return .init(headers: ["Content-Type": "application/json;charset=ISO-8859-15"], body: [])
        }
        defer { server.stop() }
        // (The server above answers step 1 empty: what AEMET does when the key header is missing.)
        let store = try await Self.store()
        _ = try await Self.run(Self.flow(server, node: "type: aemet.observations\nstations: [\"3195\"]"), store: store, at: "2021-01-09T13:00:00Z")
        #expect(server.requests.count == 1)
        let dead = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].error.contains("auth") && dead[0].error.contains("api_key header is missing"), "\(dead.map(\.error))")
        #expect(!dead[0].error.contains(Self.key) && !dead[0].message.jsonText().contains(Self.key))

        let good = try await FixtureServer.start { request in
            if request.path == "/opendata/sh/abcd1234" { return .init(headers: ["Content-Type": "text/plain;charset=ISO-8859-15"], body: Array(data.utf8)) }
            return .json(Self.envelope(request, link: "abcd1234"))
        }
        defer { good.stop() }
        let other = try await Self.store()
        _ = try await Self.run(Self.flow(good, node: "type: aemet.observations\nstations: [\"3195\"]").replacingOccurrences(of: server.baseURL, with: good.baseURL), store: other, at: "2021-01-09T13:00:00Z")
        let requests = good.requests
        #expect(requests.map(\.path) == ["/opendata/api/observacion/convencional/datos/estacion/3195", "/opendata/sh/abcd1234"])
        #expect(requests[0].headers["api_key"] == Self.key && requests[0].query == nil, "the key in the header, never in the URL")
        #expect(try await Self.stored(other).count == 18)
    }

    @Test func noDataInsideA200IsNotAFailure() async throws {
        let server = try await FixtureServer.start { _ in .json(#"{"descripcion" : "No hay datos que satisfagan esos criterios", "estado" : 404}"#) }
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        _ = try await Self.run(Self.flow(server, node: "type: aemet.observations\nstations: [\"0000X\"]"), store: store, at: "2021-01-09T13:00:00Z", metrics: metrics)
        #expect(server.requests.count == 1)
        #expect(PullFlows.requests(metrics, node: "weather", result: "no_data") == 1)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
    }

    @Test func aRefusedKeyIsAnAuthFailureAskedOnce() async throws {
        let body = try Fixtures.text("error-401-api-key-invalido")
        let server = try await FixtureServer.start { _ in .json(body, status: 401) }
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        _ = try await Self.run(Self.flow(server, node: "type: aemet.forecast\nmunicipality: \"28065\""), store: store, at: "2021-01-09T13:00:00Z", metrics: metrics)
        #expect(server.requests.map(\.path) == ["/opendata/api/prediccion/especifica/municipio/horaria/28065"])
        #expect(PullFlows.requests(metrics, node: "weather", result: "auth") == 1)
        let dead = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].error.contains("auth") && !dead[0].error.contains(Self.key))
    }

    @Test func theRateLimitWaitsAMinuteWithoutRetryAfterThenGoesOn() async throws {
        let calls = Mutex(0)
        let data = try Fixtures.text("prediccion-horaria-28065")
        let server = try await FixtureServer.start { request in
            let n = calls.withLock { c -> Int in
                c += 1
                return c
            }
            if n == 1 { return .json(#"{"descripcion" : "Se ha alcanzado uno de los límites de uso. Vuelva a intentarlo el próximo minuto.", "estado" : 429}"#, status: 429) }
            if request.path.hasPrefix("/opendata/sh/") { return .json(data) }
            return .json(Self.envelope(request, link: "f0f0f0f0"))
        }
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        let yaml = Self.flow(server, node: "type: aemet.forecast\nmunicipality: \"28065\"\nrequest_backoff: 60s")
        let clock = try await Self.run(yaml, store: store, at: "2021-01-09T13:00:00Z", metrics: metrics)
        #expect(server.requests.count == 3, "429, then the envelope and the data")
        #expect(PullFlows.requests(metrics, node: "weather", result: "rate_limit") == 1)
        let waited = clock.now().timeIntervalSince(Fixtures.utc("2021-01-09T13:00:00Z"))
        #expect(waited >= 48 && waited <= 62, "a minute less jitter, AEMET sending no Retry-After (\(waited))")
        #expect(try await Self.stored(store).count > 0)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
    }

    @Test func anExpiredDataLinkMakesTheEnvelopeBeAskedOnceMore() async throws {
        let data = try Fixtures.text("prediccion-diaria-28065")
        let links = Mutex(0)
        let server = try await FixtureServer.start { request in
            if request.path == "/opendata/sh/00000001" { return .json(#"{"descripcion" : "datos expirados", "estado" : 404}"#) }
            if request.path == "/opendata/sh/00000002" { return .json(data) }
            let n = links.withLock { l -> Int in
                l += 1
                return l
            }
            return .json(Self.envelope(request, link: String(format: "%08d", n)))
        }
        defer { server.stop() }
        let store = try await Self.store()
        _ = try await Self.run(Self.flow(server, node: "type: aemet.forecast\nmunicipality: \"28065\"\nkind: daily"), store: store, at: "2021-01-09T13:00:00Z")
        #expect(server.requests.map(\.path) == [
            "/opendata/api/prediccion/especifica/municipio/diaria/28065", "/opendata/sh/00000001",
            "/opendata/api/prediccion/especifica/municipio/diaria/28065", "/opendata/sh/00000002",
        ])
        #expect(try await Self.stored(store).contains { $0.quantity == "uv_index" })
    }

    @Test func anISO885915ForecastIsDecoded() async throws {
        // The raw wire bytes: the fixture with its accents restored, in ISO-8859-15, labelled or not.
        let text = try Fixtures.text("prediccion-horaria-28065")
            .replacingOccurrences(of: "Meteorolog\u{FFFD}a", with: "Meteorología").replacingOccurrences(of: "Espa\u{FFFD}a", with: "España")
            .replacingOccurrences(of: "\u{FFFD}", with: "©")
        let bytes = try #require(text.data(using: .isoLatin1))
        #expect(String(validating: [UInt8](bytes), as: UTF8.self) == nil, "not valid UTF-8 on purpose")
        for contentType in ["text/plain;charset=ISO-8859-15", "text/plain"] {
            let server = try await FixtureServer.start { request in
                if request.path.hasPrefix("/opendata/sh/") { return .init(headers: ["Content-Type": contentType], body: [UInt8](bytes)) }
                return .json(Self.envelope(request, link: "12345678"))
            }
            defer { server.stop() }
            let store = try await Self.store()
            _ = try await Self.run(Self.flow(server, node: "type: aemet.forecast\nmunicipality: \"28065\""), store: store, at: "2021-01-09T13:00:00Z")
            let expected = try AEMETReadings().hourlyForecast(Fixtures.array("prediccion-horaria-28065")).count
            #expect(try await Self.stored(store).count == expected, "\(contentType)")
        }
    }

    @Test func climatologyIsAskedPerMonthAndAFinalMonthIsNotAskedAgain() async throws {
        let data = try Fixtures.text("climatologicos-diarios-3194U-2019-10-subset")
        let server = try await FixtureServer.start { request in
            request.path.hasPrefix("/opendata/sh/") ? .json(data) : .json(Self.envelope(request, link: "c11a7e00"))
        }
        defer { server.stop() }
        let store = try await Self.store()
        let yaml = Self.flow(server, node: "type: aemet.climatology\nstation: \"3194U\"\nfrom: 2019-10-01\nuntil: 2019-10-30")
        _ = try await Self.run(yaml, store: store, at: "2019-11-20T08:00:00Z")
        #expect(server.requests.first?.path == "/opendata/api/valores/climatologicos/diarios/datos/fechaini/2019-10-01T00:00:00UTC/fechafin/2019-10-30T23:59:59UTC/estacion/3194U")
        #expect(try await Self.stored(store).count == 16)
        _ = try await Self.run(yaml, store: store, at: "2019-11-21T08:00:00Z")
        #expect(server.requests.count == 2, "after a restart, the month already fetched is not asked again")
    }

    @Test func aMissingKeyStopsTheFlowFromStartingAndSaysHow() async throws {
        let server = try await FixtureServer.start { _ in .json("[]") }
        defer { server.stop() }
        do {
            _ = try await Self.run(Self.flow(server, node: "type: aemet.observations\nstations: [\"3195\"]", key: "\"\""), store: try await Self.store(), at: "2021-01-09T13:00:00Z")
            Issue.record("the flow started without a key")
        } catch let error as PullFlows.Failure {
            #expect(error.description.contains("needs an AEMET OpenData API key"))
        }
        #expect(server.requests.isEmpty)
    }
}

@Suite struct AEMETSpecTests {
    @Test func everyExampleLoads() {
        #expect(PullFlows.exampleProblems(AEMETModule.specs, environment: ["AEMET_API_KEY": "k"]) == [])
    }
}
