import Foundation

/// `webhook.in`: data pushed over HTTP (`POST /hooks/{path}`), answered `202` once durable.
struct WebhookInNode: TestInputSource {
    enum Key {
        static let path = RequiredOptionKey<String>("path", doc: "Served at /hooks/PATH (letters, digits, -, _, /).", example: "utility-x/curves")
        static let auth = OptionKey<String>("auth", .enumeration(["api_key", "hmac", "none"]), default: "api_key", doc: "How callers authenticate.")
        static let secret = OptionKey<Secret?>("secret", secret: true, doc: "The HMAC secret, with auth: hmac (at least 16 characters).", example: "${env:HOOK_SECRET}")
        static let maxBody = OptionKey<Int>("max_body", default: 10_485_760, doc: "Largest body accepted, in bytes (413 above).")
        static let wait = OptionKey<Duration>("wait", default: .seconds(2), doc: "Under backpressure (the flow's queue full), how long a request waits for room before it is answered 429 with Retry-After.")
    }

    static let spec = NodeSpec(
        type: "webhook.in", kind: .source,
        summary: "Receives data POSTed to /hooks/PATH (JSON, NDJSON, CSV); 202 once it is durable",
        doc: """
            Serves `POST /hooks/{path}`. The caller authenticates with an API key of the flow's tenant
            with scope `ingest` (`Authorization: Bearer KEY`), or with an HMAC signature
            (`X-Enchufe-Signature: t=UNIX,v1=HEX`, HEX = HMAC-SHA256(secret, "t.body"); older than 5
            minutes or used before: refused), or — only for a hub listening on loopback — nothing. The
            whole body is read first: a JSON object is one message, a JSON array one per element, NDJSON
            one per line, CSV one per row (columns by the header; numbers as numbers); `readings` maps
            each to readings. The utilities' curve files become one message with a reading per row and
            value: `distributor-csv` (`CUPS;Fecha;Hora;Consumo_kWh;Metodo_obtencion`, and the
            e-distribución variant), `datadis-csv` (the Datadis web export) — hour-ending local hours, 23
            and 25 on DST days, decimal commas — and `f5d` (F5D/P5D 5D files: Wh, season flag); with `auto`,
            a CSV body is recognised as one of these by its first line. Anything unreadable is a `400` naming the line or field, and nothing of that
            request is stored. `202 {"accepted": N, "id": ...}` comes only once every message is
            committed (or safe in the dead letters); a body over `max_body` is `413`, an unknown content
            type `415`; when the flow's queue has had no room for `wait`, `429` with `Retry-After`
            (nothing of the request is taken). An `Idempotency-Key` header makes a retried request get the first answer without
            storing twice.
            """,
        options: [
            Key.path.spec,
            Key.auth.spec,
            Key.secret.spec,
            Key.maxBody.spec,
            Key.wait.spec,
        ] + BodyReader.optionSpecs,
        example: """
            - id: curves
              type: webhook.in
              path: utility-x/curves
              auth: api_key
              format: json
              readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
              to: [store]
            """,
        external: true, everyInstance: true,
        claims: { options in options[Key.path].map { [ResourceClaim("webhook path", $0, option: Key.path.name)] } ?? [] },
        check: { options in
            var problems: [OptionProblem] = []
            if let path = options[Key.path] {
                let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_/"))
                if path.isEmpty || path.hasPrefix("/") || path.hasSuffix("/") || path.unicodeScalars.contains(where: { !allowed.contains($0) }) {
                    problems.append(OptionProblem(option: "path", "'\(path)' is not a webhook path: letters, digits, -, _ and inner /"))
                }
            }
            if options[Key.auth] == "hmac", !options.has(Key.secret) {
                problems.append(OptionProblem(option: "secret", "auth: hmac needs a 'secret'"))
            } else if options[Key.auth] == "hmac", let secret = options[Key.secret], secret.reveal().trimmingCharacters(in: .whitespaces).count < 16 {
                // An empty secret signs for anyone; a short one can be guessed.
                problems.append(OptionProblem(option: "secret", "an HMAC secret must have at least 16 characters (e.g. `openssl rand -hex 32`)"))
            }
            return problems + BodyReader.problems(options)
        },
        make: { build in .source(try WebhookInNode(build)) })

    let tenant: String
    let flow: String
    let node: String
    let path: String
    let auth: WebhookRoutes.Auth
    let reader: BodyReader
    let maxBody: Int
    let wait: Duration

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        tenant = build.tenant
        flow = build.flow
        node = build.node
        path = try o.required(Key.path)
        switch o[Key.auth] {
        case "hmac": auth = .hmac(try o[Key.secret] ?? { throw PermanentError("auth: hmac needs a 'secret'") }())
        case "none": auth = .none
        default: auth = .apiKey
        }
        maxBody = o[Key.maxBody]
        wait = o[Key.wait]
        reader = try BodyReader(o)
    }

    func run(_ context: SourceContext) async throws {
        guard let routes = context.node.webhooks else { throw PermanentError("webhooks are not served by this hub") }
        var endpoint = WebhookRoutes.Endpoint(
            tenant: tenant, flow: flow, node: node, auth: auth, maxBody: maxBody,
            parse: { [self] body, contentType, at in try messages(body, contentType: contentType, receivedAt: at) },
            submit: { messages in try await context.emit(messages) })
        endpoint.room = { context.freeRoom }
        endpoint.waitForRoom = { await context.waitForRoom() }
        endpoint.wait = wait
        try routes.register(path, endpoint)
        defer { routes.unregister(path, flow: flow, node: node) }
        context.logger.info("serving POST /hooks/\(path)")
        try await context.node.clock.waitUntilCancelled()
    }

    func message(fromTestInput input: Message, at now: Date) throws -> Message {
        var message = try messages(Array(input.payload.jsonText().utf8), contentType: "application/json", receivedAt: now).first ?? Message()
        message.attributes.merge(input.attributes) { $1 }
        return message
    }

    /// The messages of a whole body, or the first problem (line or field).
    func messages(_ body: [UInt8], contentType: String?, receivedAt: Date) throws -> [Message] {
        try reader.messages(body, contentType: contentType, receivedAt: receivedAt, attributes: ["path": path])
    }
}
