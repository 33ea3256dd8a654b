import EnchufeCore
import Foundation
import TestSupport
import Testing

extension CLITests {
    /// An outside test opened 1,100 idle sockets against a hub with 1,024 descriptors: `/healthz`
    /// and webhooks timed out, and the flow watcher, failing to list the folder, stopped the flows.
    /// Here the hub has 64 descriptors and 40 idle connections are opened.
    @Test func idleConnectionsBeyondTheDescriptorLimitNeitherStallTheHubNorUnloadItsFlows() async throws {
        let dir = try projectDirectory(flow: """
            flow: steady
            nodes:
              - { id: tick, type: schedule, every: 1h, run_at_start: false, to: [log] }
              - { id: log, type: log }
            """, named: "steady")
        let hub = try RunningHub(
            binary: URL(fileURLWithPath: "/bin/sh"),
            ["-c", "ulimit -n 64 && exec '\(Self.binary.path)' run --http 127.0.0.1:0 --http-idle-timeout 2s --log-level debug"], in: dir)
        defer { hub.terminate() }
        let port = Int(hub.base.split(separator: ":").last!)!
        let idle = try (0..<40).map { _ in try RawHTTPConnection(port: port, timeout: .seconds(20)) }
        let health = try await RawHTTPConnection.request(port: port, "GET", "/healthz", timeout: .seconds(30))
        #expect(health.status == 200, "answered once idle connections were closed")
        let flows = try await RawHTTPConnection.request(port: port, "GET", "/api/v1/flows", timeout: .seconds(30))
        #expect(flows.body.contains("\"steady\""), "the flow still runs: \(flows.body.prefix(200))")
        #expect(!hub.output.contains("no longer in the flow files"), "\(hub.output)")
        #expect(hub.output.contains("HTTP connections at most 16"), "\(hub.output.suffix(2000))")
        _ = idle
    }
}
