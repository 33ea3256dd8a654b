import Foundation

/// The OpenAPI 3.1 document of the HTTP API, served at `/openapi.json`. A test checks that it
/// describes exactly the routes `HTTPServer.router` serves.
public enum OpenAPI {
    struct Parameter {
        var name: String
        var place = "query"
        var required = false
        var doc: String
    }

    struct Operation {
        var method: String
        var path: String
        var summary: String
        /// The key scope it needs; nil: no key.
        var scope: String?
        var parameters: [Parameter] = []
        /// Content type of the 200 (or 202) answer.
        var answers: [String] = ["application/json"]
        var status = "200"
        var errors: [String] = []
        var body: String?
    }

    static let range = [
        Parameter(name: "from", doc: "First day (`YYYY-MM-DD`, local) or instant with an offset."),
        Parameter(name: "to", doc: "Day after the last (excluded), or instant with an offset."),
    ]

    static let operations: [Operation] = [
        Operation(method: "get", path: "/openapi.json", summary: "This document", scope: nil),
        Operation(method: "get", path: "/healthz", summary: "Liveness", scope: nil),
        Operation(method: "get", path: "/readyz", summary: "Readiness: the store is reachable and flows are loaded", scope: nil, errors: ["503"]),
        Operation(
            method: "get", path: "/metrics",
            summary: "Prometheus metrics: per node messages, errors, retries, dead letters, queue depth, processing time; per source lag. From this machine without a key (unless --require-keys), else with an admin key, which sees its tenant's flows only",
            scope: "admin", answers: ["text/plain"]),
        Operation(
            method: "post", path: "/hooks/{path}",
            summary: "Webhook ingestion into a `webhook.in` node: 202 once durable; 400 names the line or field and stores nothing; 429 with Retry-After under backpressure",
            scope: "ingest", parameters: [
                Parameter(name: "path", place: "path", required: true, doc: "The node's `path`."),
                Parameter(name: "Idempotency-Key", place: "header", doc: "A retried request with the same key gets the first answer and stores nothing twice."),
                Parameter(name: "X-Enchufe-Signature", place: "header", doc: "`t=UNIX,v1=HEX(HMAC-SHA256(secret, \"t.body\"))` for `auth: hmac` endpoints."),
            ],
            status: "202", errors: ["400", "404", "409", "413", "415", "429", "503"],
            body: "JSON (array: one message per element), NDJSON, CSV, distributor CSV, Datadis CSV or F5D, as the node's `format`"),
        Operation(
            method: "get", path: "/api/v1/readings", summary: "The key's tenant's readings, streamed; `resolution` aggregates (sum for energy, mean otherwise)",
            scope: "read", parameters: [
                Parameter(name: "series", doc: "Series, comma-separated or repeated (default all)."),
                Parameter(name: "quantity", doc: "One quantity (default all)."),
            ] + range + [
                Parameter(name: "resolution", doc: "`PT15M`, `PT30M`, `PT1H` or `P1D` (Madrid days)."),
                Parameter(name: "format", doc: "`json` (default), `ndjson` or `csv`."),
            ], answers: ["application/json", "application/x-ndjson", "text/csv"], errors: ["400"]),
        Operation(
            method: "get", path: "/api/v1/changes",
            summary: "Readings inserted or changed after `after`, in change order, with `next` and `more`: the incremental pull for billing apps",
            scope: "read", parameters: [
                Parameter(name: "after", doc: "The `next` of the previous page (default 0)."),
                Parameter(name: "limit", doc: "1–10000 (default 1000)."),
            ], errors: ["400"]),
        Operation(
            method: "get", path: "/api/v1/billing/periods",
            summary: "Per supply and tariff period: consumption, surplus, self-consumption (kWh), hours and estimated hours; hours present against those expected (23/25-hour days)",
            scope: "read", parameters: [
                Parameter(name: "from", required: true, doc: "First local day of the supply's zone (`YYYY-MM-DD`)."),
                Parameter(name: "to", required: true, doc: "Day after the last (excluded), at most 400 days on."),
                Parameter(name: "cups", doc: "Supplies, comma-separated (default all of the tenant)."),
            ], errors: ["400"]),
        Operation(
            method: "get", path: "/api/v1/exports/{name}",
            summary: "A named export declared by an `export` node: csv, json, ndjson, datadis-csv, f5d or a coefficient file (409 when a set does not sum to exactly 1)",
            scope: "read", parameters: [Parameter(name: "name", place: "path", required: true, doc: "The node's `name`.")] + range,
            answers: ["text/csv", "application/json", "application/x-ndjson", "text/plain"], errors: ["400", "404", "409"]),
        Operation(
            method: "get", path: "/api/v1/forecasts",
            summary: "Forecasts (kept apart from readings): per series, quantity, interval and model the latest issue, or the one current at `issued`",
            scope: "read", parameters: [
                Parameter(name: "series", doc: "Series, comma-separated (default all)."), Parameter(name: "quantity", doc: "The quantity (default all)."),
                Parameter(name: "from", required: true, doc: "First instant (or local date), included."),
                Parameter(name: "to", required: true, doc: "Last instant (or local date), excluded; at most 400 days on."),
                Parameter(name: "issued", doc: "`latest` (default) or an instant: the forecasts as they stood then."),
            ], errors: ["400"]),
        Operation(
            method: "get", path: "/api/v1/forecasts/accuracy",
            summary: "Forecast against measured, per series, model and horizon (0-6h, 6-24h, day-ahead, 2-7d): n, MAE, RMSE, bias, nMAE and skill against the quantity's naive forecast",
            scope: "read", parameters: [
                Parameter(name: "series", doc: "Series, comma-separated (default every series forecast)."),
                Parameter(name: "quantity", required: true, doc: "The quantity: it chooses the naive forecast (price benchmark, a week before for consumption, the day before otherwise)."),
                Parameter(name: "from", required: true, doc: "First instant (or local date) of the intervals, included."),
                Parameter(name: "to", required: true, doc: "Last, excluded; at most 400 days on."),
            ], errors: ["400"]),
        Operation(
            method: "get", path: "/api/v1/alerts",
            summary: "The tenant's alerts (those of `alert` nodes: raised ones first, with since when and the value) and their latest changes of state, newest first",
            scope: "read", parameters: [
                Parameter(name: "state", doc: "`raised` for only the alerts raised now (default all)."),
                Parameter(name: "limit", doc: "How many recent changes, 1–1000 (default 50)."),
            ], errors: ["400"]),
        Operation(
            method: "get", path: "/api/v1/communities/{id}/settlement",
            summary: "A community market's monthly statement (what community.market stored): per member bought, sold, value, grid import and export, savings; and the total",
            scope: "read", parameters: [
                Parameter(name: "id", place: "path", required: true, doc: "The community (the `community` of the tenant's supplies)."),
                Parameter(name: "month", required: true, doc: "A local month of Madrid, YYYY-MM."),
                Parameter(name: "format", doc: "`json` (default) or `csv`."),
            ], answers: ["application/json", "text/csv"], errors: ["400", "404"]),
        Operation(
            method: "get", path: "/api/v1/communities",
            summary: "The communities of the key's tenant (every tenant's from this machine without a key) with their member counts and tariff zone",
            scope: "totals"),
        Operation(
            method: "get", path: "/api/v1/communities/{id}/dashboard",
            summary: "A community's dashboard numbers: measured against predicted energy per local hour (per day for a month), today's and tomorrow's prices with negative and cheapest intervals, surplus for sale and the market's trades, self-sufficiency and self-consumption, forecast accuracy; per member with a read key only",
            scope: "totals", parameters: [
                Parameter(name: "id", place: "path", required: true, doc: "The community (the `community` of the tenant's supplies)."),
                Parameter(name: "date", doc: "Local day `YYYY-MM-DD` the range starts on (month: any day of it; default today)."),
                Parameter(name: "range", doc: "`day` (default, hourly), `week` (hourly) or `month` (daily)."),
                Parameter(name: "vintage", doc: "`latest` (default) or `day-ahead`: the forecasts issued before each local day began."),
                Parameter(name: "tenant", doc: "The tenant, for the operator when two tenants have a community of this id."),
            ], errors: ["400", "404"]),
        Operation(method: "get", path: "/api/v1/supplies", summary: "The tenant's supply points", scope: "read"),
        Operation(
            method: "put", path: "/api/v1/supplies/{cups}",
            summary: "Register or update a supply point: tariff, zone, community, coefficient, contracted_power_kw, valid_from, valid_to, distributor_code, point_type, pv (kwp, tilt, azimuth, losses, inverter_kw, latitude, longitude, altitude), market (bid, ask in EUR/kWh)",
            scope: "admin", parameters: [Parameter(name: "cups", place: "path", required: true, doc: "The CUPS (20 or 22 characters).")],
            errors: ["400", "413"], body: "JSON object"),
        Operation(
            method: "get", path: "/api/v1/flows",
            summary: "Operator: every running flow with its nodes (status running/waiting/failing/stopped, counters, queue, last error, next run, source lag) and wires; flows skipped and why; the last reload",
            scope: "admin"),
        Operation(
            method: "get", path: "/api/v1/flows/{flow}", summary: "Operator: one running flow's status",
            scope: "admin", parameters: [Parameter(name: "flow", place: "path", required: true, doc: "The flow's id.")], errors: ["404"]),
        Operation(
            method: "post", path: "/api/v1/flows/reload",
            summary: "Operator: load the flow files again; changed flows are drained and restarted, a file with errors leaves its flows as they were",
            scope: "admin", errors: ["409"]),
        Operation(
            method: "get", path: "/api/v1/dead-letters", summary: "Operator: dead letters, newest first",
            scope: "admin", parameters: [Parameter(name: "limit", doc: "1–1000 (default 100).")], errors: ["400"]),
        Operation(method: "delete", path: "/api/v1/dead-letters", summary: "Operator: delete the dead letters", scope: "admin"),
        Operation(
            method: "get", path: "/api/v1/dead-letters/{id}", summary: "Operator: one dead letter with its message",
            scope: "admin", parameters: [Parameter(name: "id", place: "path", required: true, doc: "The dead letter's id.")], errors: ["400", "404"]),
        Operation(
            method: "post", path: "/api/v1/dead-letters/{id}/replay",
            summary: "Operator: send the dead letter's message back into the node that failed it; 200 once what derives from it is committed (or dead-lettered again)",
            scope: "admin", parameters: [Parameter(name: "id", place: "path", required: true, doc: "The dead letter's id.")], errors: ["400", "404", "409", "503"]),
        Operation(
            method: "get", path: "/api/v1/tap", summary: "Operator: live messages of one node as Server-Sent Events (at most 20 a second, the rest counted as skipped; secrets redacted)",
            scope: "admin", parameters: [
                Parameter(name: "flow", required: true, doc: "The flow's id."), Parameter(name: "node", required: true, doc: "The node's id."),
            ], answers: ["text/event-stream"], errors: ["400", "404", "429"]),
        Operation(
            method: "get", path: "/api/v1/cluster",
            summary: "Operator: this instance's id, every instance of the deployment with its last heartbeat (alive: within 15 s), and the leases of the singleton sources (holder, fence, expiry)",
            scope: "admin"),
        Operation(method: "get", path: "/ui/communities", summary: "The community dashboard's index page (its data needs a read or totals key, or none on loopback)", scope: nil, answers: ["text/html"]),
        Operation(
            method: "get", path: "/ui/communities/{id}", summary: "A community's dashboard page: charts and tables of /api/v1/communities/{id}/dashboard", scope: nil,
            parameters: [Parameter(name: "id", place: "path", required: true, doc: "The community.")], answers: ["text/html"]),
        Operation(method: "get", path: "/ui", summary: "The status page, at /ui/ as well (its data needs an admin key, or none when the hub listens on loopback)", scope: nil, answers: ["text/html"]),
    ]

    public static let document: JSONValue = {
        var paths: [String: [String: JSONValue]] = [:]
        for op in operations {
            var responses: [String: JSONValue] = [
                op.status: .object([
                    "description": "OK",
                    "content": .object(Dictionary(uniqueKeysWithValues: op.answers.map { ($0, JSONValue.object([:])) })),
                ])
            ]
            for code in op.errors + (op.scope == nil ? [] : ["401", "403"]) {
                responses[code] = .object([
                    "description": .string(HTTPStatusText.text(code)),
                    "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]],
                ])
            }
            var operation: [String: JSONValue] = [
                "summary": .string(op.summary),
                "operationId": .string(op.method + op.path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "")),
                "responses": .object(responses),
                "parameters": .array(op.parameters.map { p in
                    .object([
                        "name": .string(p.name), "in": .string(p.place), "required": .bool(p.required || p.place == "path"),
                        "description": .string(p.doc), "schema": ["type": "string"],
                    ])
                }),
                "security": op.scope.map { .array([.object(["bearer": .array([.string($0)])])]) } ?? .array([]),
            ]
            if let scope = op.scope { operation["x-scope"] = .string(scope) }
            if let body = op.body {
                operation["requestBody"] = ["required": true, "description": .string(body), "content": ["*/*": [:]]]
            }
            paths[op.path, default: [:]][op.method] = .object(operation)
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "Enchufe", "version": "1",
                "description": "Integration hub for Spanish energy communities: readings in, billing exports out. Keys belong to one tenant and see only its data.",
            ],
            "paths": .object(paths.mapValues { JSONValue.object($0) }),
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "description": "An API key (`enchufe keys create`) with the scopes read, totals (a community's totals only), ingest or admin."]],
                "schemas": [
                    "Problem": [
                        "type": "object", "description": "RFC 9457 problem details",
                        "properties": ["type": ["type": "string"], "title": ["type": "string"], "status": ["type": "integer"], "detail": ["type": "string"]],
                    ]
                ],
            ],
        ]
    }()
}

enum HTTPStatusText {
    static func text(_ code: String) -> String {
        switch code {
        case "400": "Bad request: the detail says what is wrong"
        case "401": "No or unknown key"
        case "403": "The key lacks the scope"
        case "404": "Not found"
        case "409": "Conflict"
        case "413": "Body too large"
        case "415": "Unsupported content type"
        case "429": "Backpressure: retry after Retry-After"
        case "503": "Not ready"
        default: "Error"
        }
    }
}
