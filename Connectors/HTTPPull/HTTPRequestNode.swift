import AsyncHTTPClient
import EnchufeCore
import Foundation
import NIOCore
import NIOHTTP1

/// `http.request`: each message sent to a third-party system (POST or PUT, JSON or CSV).
struct HTTPRequestNode: RecordingSink {
    enum Key {
        static let url = RequiredOptionKey<JSONValue>("url", .template, doc: "Where to send (a template).", example: "https://billing.example/api/readings")
        static let method = OptionKey<String>("method", .enumeration(["POST", "PUT"]), default: "POST", doc: "HTTP method.")
        static let headers = OptionKey<JSONValue?>("headers", .templates, doc: "Headers, each a template; use ${env:NAME} for secrets.", example: ["Authorization": "Bearer ${env:BILLING_TOKEN}"])
        static let body = OptionKey<String>("body", .enumeration(["payload", "readings"]), default: "payload", doc: "What to send: the payload, or the readings.")
        static let format = OptionKey<String>("format", .enumeration(["json", "csv"]), default: "json", doc: "JSON, or CSV (readings only).")
        static let timeout = OptionKey<Duration>("timeout", default: .seconds(30), doc: "Longest wait for the whole answer.")
    }

    static let spec = NodeSpec(
        type: "http.request", kind: .sink,
        summary: "Sends each message to another system over HTTP (POST/PUT, JSON or CSV), with retries",
        doc: """
            One request per message to `url` (a template: `https://billing.example/api/{payload.cups}`),
            with `headers` (templates; secrets from `${env:...}`, never logged). The body is the message's
            payload as JSON, or its readings (`body: readings`) as JSON or CSV (`format: csv`:
            `series,quantity,ts,resolution,value,unit,quality`). A 2xx answer is success. A 5xx, 429,
            timeout or refused connection is retried by the node's `retry` policy (exponential backoff with
            jitter), honouring `Retry-After`; any other 4xx is not: the message goes to the `errors` wire
            (or the dead letters) with the status and the start of the answer.
            """,
        options: [
            Key.url.spec,
            Key.method.spec,
            Key.headers.spec,
            Key.body.spec,
            Key.format.spec,
            Key.timeout.spec,
        ],
        example: """
            - id: billing
              type: http.request
              url: https://billing.example/api/readings
              headers: { Authorization: "Bearer ${env:BILLING_TOKEN}" }
              body: readings
            """,
        external: true,
        check: { o in
            o[Key.format] == "csv" && o[Key.body] != "readings"
                ? [OptionProblem(option: "format", "format: csv sends readings: add body: readings")] : []
        },
        make: { build in .sink(try HTTPRequestNode(build)) })

    let url: BoundTemplate
    let headers: [(String, BoundTemplate)]
    let method: HTTPMethod
    let readingsBody: Bool
    let csv: Bool
    let timeout: Duration

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        let expressions = NodeExpressions(limits: LuaLimits(options: o))
        url = try expressions.bind(ValueTemplate.option("url", try o.required(Key.url), in: o))
        headers = try (o[Key.headers]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { name, value in
            (name, try expressions.bind(ValueTemplate.option("headers.\(name)", value, in: o)))
        }
        method = o[Key.method] == "PUT" ? .PUT : .POST
        readingsBody = o[Key.body] == "readings"
        csv = o[Key.format] == "csv"
        timeout = o[Key.timeout]
    }

    var batching: Batching { .single }

    /// What would be sent: method, URL, headers and body.
    func request(for message: Message) throws -> (url: String, headers: [(String, String)], body: String, contentType: String) {
        let target = try url.value(for: message).templateText
        let fields = try headers.map { ($0.0, try $0.1.value(for: message).templateText) }
        if csv {
            let rows = message.readings.map { r in
                [r.series, r.quantity, ISO8601.string(r.ts), r.resolution, String(r.value), r.unit, r.quality.rawValue].joined(separator: ",")
            }
            return (target, fields, (["series,quantity,ts,resolution,value,unit,quality"] + rows).joined(separator: "\n") + "\n", "text/csv")
        }
        let body: JSONValue = readingsBody ? .array(message.readings.map(\.json)) : message.payload
        return (target, fields, body.jsonText(), "application/json")
    }

    func testRecord(_ message: Message) throws -> JSONValue {
        let r = try request(for: message)
        return [
            "method": .string(method.rawValue), "url": .string(r.url), "body": .string(r.body),
            "headers": .object(Dictionary(uniqueKeysWithValues: r.headers.map { ($0.0, JSONValue.string($0.1)) })),
        ]
    }

    func write(_ batch: [Message], _ context: NodeContext) async throws {
        for message in batch {
            let r = try request(for: message)
            var request = HTTPClientRequest(url: r.url)
            request.method = method
            request.headers.add(name: "User-Agent", value: PullClient.userAgent)
            request.headers.add(name: "Content-Type", value: r.contentType)
            for (name, value) in r.headers { request.headers.replaceOrAdd(name: name, value: value) }
            request.body = .bytes(ByteBuffer(string: r.body))
            let host = URL(string: r.url)?.host ?? r.url
            let answer: HTTPClientResponse
            let text: String
            do {
                answer = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(timeout.nanosecondsTotal))
                text = String(buffer: try await answer.body.collect(upTo: 64 << 10))
            } catch {
                throw PullError(.upstream, "\(method.rawValue) \(host): \(error)")  // retried
            }
            let status = Int(answer.status.code)
            if (200..<300).contains(status) { continue }
            let detail = "\(method.rawValue) \(host) answered \(status): \(String(text.prefix(300)))"
            if status == 429 || status >= 500 {
                throw PullError(status == 429 ? .rateLimit : .upstream, status: status, detail, retryAfter: answer.headers.first(name: "Retry-After").flatMap(PullResponse.parseRetryAfter))
            }
            throw PermanentError(detail)  // a 4xx: asked again the same way, the same answer
        }
    }
}
