import EnchufeCore
import Foundation
import Logging
import MQTT
import Synchronization
import TestSupport
import Testing

/// The first connection outcome a client reports.
final class FirstOutcome: Sendable {
    private let state = Mutex<(outcome: (Bool, String)?, waiter: CheckedContinuation<(Bool, String), Never>?)>((nil, nil))

    func report(_ up: Bool, _ reason: String) {
        let waiter = state.withLock { s -> CheckedContinuation<(Bool, String), Never>? in
            guard s.outcome == nil else { return nil }
            s.outcome = (up, reason)
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: (up, reason))
    }

    var value: (Bool, String) {
        get async {
            await withCheckedContinuation { c in
                let now = state.withLock { s -> (Bool, String)? in
                    if let o = s.outcome { return o }
                    s.waiter = c
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        }
    }
}

@Suite struct MQTTBrokerTests {
    /// Certificates made with openssl for this run: a CA, a server certificate it signed (for
    /// localhost and 127.0.0.1), and a second CA that signed nothing.
    static func certificates(in dir: URL) throws {
        func openssl(_ arguments: [String]) throws { try Commands.run("/usr/bin/openssl", arguments) }
        let p = { (name: String) in dir.appendingPathComponent(name).path }
        for ca in ["ca", "other-ca"] {
            try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("\(ca).key"), "-out", p("\(ca).pem"), "-days", "2", "-subj", "/CN=Enchufe test \(ca)"])
        }
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=localhost"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: p("san.ext"), atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("san.ext")])
    }

    func outcome(_ settings: MQTTSettings) async throws -> (Bool, String) {
        var handlers = MosquittoClient.Handlers()
        let first = FirstOutcome()
        handlers.connection = { _, up, reason in first.report(up, reason) }
        let client = try MosquittoClient(settings, handlers: handlers)
        try client.start()
        let result = await first.value
        client.stop()
        return result
    }

    @Test func tlsConnectsWithTheRightCAAndIsRefusedWithAWrongOne() async throws {
        let files = try MosquittoServer.prepareDirectory()
        try Self.certificates(in: files)
        try MosquittoServer.handOver(files)
        let tlsPort = try Commands.freeLoopbackPort()
        let broker = try MosquittoServer.start(extraConfig: """
            listener \(tlsPort) 127.0.0.1
            cafile \(files.path)/ca.pem
            certfile \(files.path)/server.pem
            keyfile \(files.path)/server.key
            """)
        defer { broker.destroy() }

        var settings = MQTTSettings(port: tlsPort, clientID: "tls-\(UUID().uuidString.prefix(8))")
        settings.tls = .init(ca: files.appendingPathComponent("ca.pem").path)
        let good = try await outcome(settings)
        #expect(good.0, "with the CA that signed the broker's certificate: \(good.1)")

        settings.clientID = "tls-\(UUID().uuidString.prefix(8))"
        settings.tls = .init(ca: files.appendingPathComponent("other-ca.pem").path)
        let wrong = try await outcome(settings)
        #expect(!wrong.0, "a CA that did not sign the broker's certificate must be refused")

        settings.clientID = "tls-\(UUID().uuidString.prefix(8))"
        settings.host = "127.0.0.1"
        settings.port = broker.port  // the plain listener: TLS against it fails too
        settings.tls = .init(ca: files.appendingPathComponent("ca.pem").path)
        #expect(try await !outcome(settings).0)
    }

    @Test func usernameAndPasswordAreCheckedByTheBroker() async throws {
        let files = try MosquittoServer.prepareDirectory()
        let passwords = files.appendingPathComponent("passwords").path
        try Commands.run("/usr/bin/mosquitto_passwd", ["-b", "-c", passwords, "hub", "s3cret"])
        try MosquittoServer.handOver(files)
        let broker = try MosquittoServer.start(anonymous: false, extraConfig: "password_file \(passwords)")
        defer { broker.destroy() }

        var settings = MQTTSettings(port: broker.port, clientID: "auth-\(UUID().uuidString.prefix(8))")
        settings.username = "hub"
        settings.password = "s3cret"
        #expect(try await outcome(settings).0)
        settings.clientID = "auth-\(UUID().uuidString.prefix(8))"
        settings.password = "wrong"
        let refused = try await outcome(settings)
        #expect(!refused.0)
        #expect(refused.1.lowercased().contains("not authorized") || refused.1.lowercased().contains("bad user name or password"), "\(refused.1)")
    }
}
