import ArgumentParser
import AsyncHTTPClient
import EnchufeCore
import Foundation
import NIOCore
import NIOHTTP1

/// Where a running hub is and how to talk to it (for commands that steer it over its HTTP API).
struct HubOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The running hub's address (default: env ENCHUFE_HTTP, else 127.0.0.1:8080).", valueName: "HOST:PORT or URL"))
    var hub: String?

    @Option(help: "An admin API key (env ENCHUFE_KEY); none is needed when the hub listens on loopback.")
    var key: String?

    var baseURL: String {
        let address = hub ?? ProcessInfo.processInfo.environment["ENCHUFE_HTTP"] ?? "127.0.0.1:8080"
        return address.hasPrefix("http://") || address.hasPrefix("https://") ? address : "http://" + address
    }

    func request(_ path: String, method: HTTPMethod = .GET) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let key = key ?? ProcessInfo.processInfo.environment["ENCHUFE_KEY"] { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        return request
    }

    /// The answer's body, or a failure with the problem's detail for an error status.
    func call(_ path: String, method: HTTPMethod = .GET) async throws -> JSONValue {
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request(path, method: method), timeout: .seconds(60))
        } catch {
            throw CommandFailure("no hub answers at \(baseURL) (\(error)): is `enchufe run` running there? (--hub)")
        }
        let body = String(buffer: try await response.body.collect(upTo: 16 << 20))
        let json = (try? JSONValue.parse(body)) ?? .string(body)
        guard (200..<300).contains(response.status.code) else {
            throw CommandFailure("\(response.status.code) \(json["title"]?.stringValue ?? response.status.reasonPhrase): \(json["detail"]?.stringValue ?? body)")
        }
        return json
    }
}

struct TapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap", abstract: "Print the live messages of a running hub's node, one JSON line each (at most 20 a second).")

    @Argument(help: ArgumentHelp("The node to watch.", valueName: "FLOW/NODE"))
    var target: String

    @Option(help: "Stop after this many messages.")
    var count: Int?

    @OptionGroup var hubOptions: HubOptions

    func run() async throws {
        let parts = target.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw CommandFailure("'\(target)' is not FLOW/NODE") }
        let query = "flow=\(parts[0].addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? parts[0])&node=\(parts[1].addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? parts[1])"
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(hubOptions.request("/api/v1/tap?" + query), deadline: .distantFuture)
        } catch {
            throw CommandFailure("no hub answers at \(hubOptions.baseURL) (\(error)): is `enchufe run` running there? (--hub)")
        }
        guard response.status == .ok else {
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            throw CommandFailure("\(response.status.code): \((try? JSONValue.parse(body))?["detail"]?.stringValue ?? body)")
        }
        FileHandle.standardError.write(Data("tapping \(target) at \(hubOptions.baseURL) (Ctrl-C to stop)\n".utf8))
        var pending = ""
        var printed = 0
        for try await chunk in response.body {
            pending += String(buffer: chunk)
            while let end = pending.range(of: "\n\n") {
                let block = pending[..<end.lowerBound]
                pending = String(pending[end.upperBound...])
                for line in block.split(separator: "\n") where line.hasPrefix("data: ") {
                    FileHandle.standardOutput.write(Data((line.dropFirst(6) + "\n").utf8))
                    printed += 1
                    if let count, printed >= count { return }
                }
            }
        }
    }
}

extension DeadLettersCommand {
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a dead letter's message back into the node that failed it, in the running hub (over its HTTP API).")
        @Argument(help: "Dead letter id.") var id: Int64
        @OptionGroup var hubOptions: HubOptions

        func run() async throws {
            let answer = try await hubOptions.call("/api/v1/dead-letters/\(id)/replay", method: .POST)
            print("dead letter \(id) replayed into \(answer["flow"]?.stringValue ?? "?")/\(answer["node"]?.stringValue ?? "?"): \(answer["outcome"]?.stringValue ?? "?")")
        }
    }
}
