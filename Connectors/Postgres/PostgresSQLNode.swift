import EnchufeCore
import Foundation
import PostgresNIO
import Synchronization

/// `postgres.sql`: inserts or upserts messages into a table of the user's own, one row per message,
/// with a column mapping. Identifiers are checked when the flow loads and always quoted; values travel
/// as one JSON parameter that PostgreSQL converts to the table's column types
/// (`json_populate_recordset`), so nothing from a message is ever spliced into SQL.
struct PostgresSQLNode: SinkNode {
    enum Key {
        static let url = OptionKey<String?>("url", secret: true, doc: "postgres://USER:PASSWORD@HOST:PORT/DATABASE (default: the hub's store, if PostgreSQL).", example: "${METERING_DB}")
        static let table = RequiredOptionKey<String>("table", doc: "Table, optionally schema-qualified.", example: "metering.device_power")
        static let columns = RequiredOptionKey<JSONValue>("columns", .templates, doc: "Column → value.", example: ["device": "{topic.2}", "at": "{payload.ts}", "watts": "=msg.payload.w"])
        static let conflict = OptionKey<[String]>("conflict", default: [], doc: "Columns of the unique key that decides insert or update (default: plain insert).", example: ["device", "at"])
        static let onConflict = OptionKey<String>("on_conflict", .enumeration(["update", "nothing"]), default: "update", doc: "What a row whose key exists does.")
        static let update = OptionKey<[String]?>("update", doc: "Columns updated on conflict (default: every mapped column outside the key).", example: ["watts"])
        static let batchSize = OptionKey<Int>("batch_size", default: 500, doc: "Most messages written in one statement.")
        static let flushInterval = OptionKey<Duration>("flush_interval", default: .seconds(1), doc: "Longest wait for a batch to fill once its first message is in.")
    }

    static let spec = NodeSpec(
        type: "postgres.sql", kind: .sink,
        summary: "Inserts or upserts messages into a PostgreSQL table of your own, with a column mapping",
        doc: """
            Each message becomes one row: `columns` maps a column to a constant, a `{path}` template or an
            `=lua expression`. PostgreSQL converts each value to its column's type (numbers, text,
            ISO-8601 timestamps, JSON objects for json/jsonb columns). With `conflict` (the columns of a
            unique key) a row whose key exists is updated (`on_conflict: update`, the `update` columns,
            default every mapped column outside the key) or left alone (`on_conflict: nothing`); within
            one batch the last message for a key wins. Identifiers are used as written, quoted: write
            them as the database has them (lowercase unless created quoted). `url` defaults to the hub's
            store when it is PostgreSQL. A batch is one statement in one transaction; sources are
            acknowledged once it commits. Rows PostgreSQL refuses (bad value, constraint) go to the
            `errors` port or the dead letters, one message at a time; while the database is unreachable
            the node waits and holds back its sources.
            """,
        options: [
            Key.url.spec,
            Key.table.spec,
            Key.columns.spec,
            Key.conflict.spec,
            Key.onConflict.spec,
            Key.update.spec,
            Key.batchSize.spec,
            Key.flushInterval.spec,
        ] + LuaLimits.optionSpecs,
        example: """
            - id: archive
              type: postgres.sql
              url: ${METERING_DB}
              table: metering.device_power
              columns:
                device: "{topic.2}"
                at: "{payload.ts}"
                watts: "=msg.payload.w"
              conflict: [device, at]
            """,
        external: true,
        check: { options in problems(options) },
        make: { context in .sink(try PostgresSQLNode(context.options)) })

    /// A PostgreSQL identifier as the hub accepts it: letters, digits, underscores, not starting with a digit.
    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, text.utf8.count <= 63, first == "_" || first.properties.isAlphabetic, first.isASCII else {
            return false
        }
        return text.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    static func problems(_ options: NodeOptions) -> [OptionProblem] {
        var problems: [OptionProblem] = []
        let table = options[Key.table]
        let parts = table?.split(separator: ".", omittingEmptySubsequences: false).map(String.init) ?? []
        if let table, !(1...2).contains(parts.count) || !parts.allSatisfy(isIdentifier) {
            problems.append(OptionProblem(option: "table", "'\(table)' is not a table name (letters, digits and _, optionally schema.table)"))
        }
        let columns = Set(options[Key.columns]?.objectValue?.keys.map { $0 } ?? [])
        if columns.isEmpty { problems.append(OptionProblem(option: "columns", "needs at least one column")) }
        for column in columns.sorted() where !isIdentifier(column) {
            problems.append(OptionProblem(option: "columns.\(column)", "'\(column)' is not a column name (letters, digits and _)"))
        }
        let conflict = options[Key.conflict]
        for (i, column) in conflict.enumerated() where !columns.contains(column) {
            problems.append(OptionProblem(option: "conflict.\(i)", "'\(column)' is not one of the mapped columns"))
        }
        for (i, column) in (options[Key.update] ?? []).enumerated() {
            if !columns.contains(column) {
                problems.append(OptionProblem(option: "update.\(i)", "'\(column)' is not one of the mapped columns"))
            } else if conflict.contains(column) {
                problems.append(OptionProblem(option: "update.\(i)", "'\(column)' is part of the conflict key"))
            }
        }
        if options.has(Key.update) && conflict.isEmpty {
            problems.append(OptionProblem(option: "update", "needs 'conflict' (the key that decides what to update)"))
        }
        if options[Key.batchSize] < 1 { problems.append(OptionProblem(option: "batch_size", "must be at least 1")) }
        return problems
    }

    let batching: Batching
    let columns: [(name: String, value: BoundTemplate)]
    let conflict: [String]
    let statement: String
    let url: String?
    private let database = OpenedDatabase()

    init(_ options: NodeOptions) throws {
        batching = Batching(size: options[Key.batchSize], flushInterval: options[Key.flushInterval])
        let expressions = NodeExpressions(limits: LuaLimits(options: options))
        columns = try (options[Key.columns]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { name, value in
            (name, try expressions.bind(ValueTemplate.option("columns.\(name)", value, in: options)))
        }
        let conflict = options[Key.conflict]
        self.conflict = conflict
        url = options[Key.url].flatMap { $0.isEmpty ? nil : $0 }
        let columnNames = columns.map(\.name)
        func quoted(_ name: String) -> String { "\"\(name)\"" }
        let table = try options.required(Key.table).split(separator: ".").map { quoted(String($0)) }.joined(separator: ".")
        let names = columnNames.map(quoted).joined(separator: ", ")
        let updates = conflict.isEmpty || options[Key.onConflict] == "nothing"
            ? [] : options[Key.update] ?? columnNames.filter { !conflict.contains($0) }
        updatesOnConflict = !updates.isEmpty
        var sql = "INSERT INTO \(table) (\(names)) SELECT \(names) FROM json_populate_recordset(NULL::\(table), $1::json)"
        if !conflict.isEmpty {
            sql += " ON CONFLICT (\(conflict.map(quoted).joined(separator: ", ")))"
            sql += updates.isEmpty
                ? " DO NOTHING" : " DO UPDATE SET " + updates.map { "\(quoted($0)) = excluded.\(quoted($0))" }.joined(separator: ", ")
        }
        statement = sql
    }

    /// Whether a key met twice updates the row (then, within a batch, the last message wins).
    let updatesOnConflict: Bool

    /// With `url`, the node's own database: opened and run from `start` to `close` (the server
    /// need not be up at start: a write waits for it as the hub's store does).
    func start(_ context: NodeContext) async throws {
        guard let url else { return }
        let store = try PostgresStore(url: url, logger: context.logger)
        database.state.withLock { $0 = (store, Task { await store.run() }) }
    }

    func close(_ context: NodeContext) async throws {
        guard let (store, run) = database.state.withLock({ state in defer { state = nil }; return state }) else { return }
        run.cancel()
        await run.value
        try await store.close()
    }

    /// The database: `url`'s (opened in `start`), or the hub's store.
    func target(_ context: NodeContext) throws -> PostgresStore {
        if url != nil {
            guard let store = database.state.withLock({ $0?.store }) else {
                throw PermanentError("postgres.sql: the database of 'url' is not open (the node was not started)")
            }
            return store
        }
        guard let store = context.store as? PostgresStore else {
            throw PermanentError("postgres.sql needs 'url': the hub's store (\(context.store.displayName)) is not PostgreSQL")
        }
        return store
    }

    func write(_ batch: [Message], _ context: NodeContext) async throws {
        var rows: [JSONValue] = []
        var rowForKey: [String: Int] = [:]
        for message in batch {
            var row: [String: JSONValue] = [:]
            for (name, template) in columns { row[name] = try template.value(for: message) }
            // One statement cannot update a row twice: within a batch the last message for a key wins.
            if updatesOnConflict {
                let key = JSONValue.array(conflict.map { row[$0] ?? .null }).jsonText()
                if let index = rowForKey[key] {
                    rows[index] = .object(row)
                    continue
                }
                rowForKey[key] = rows.count
            }
            rows.append(.object(row))
        }
        let parameter = JSONValue.array(rows).jsonText()
        let database = try target(context)
        let sql = statement
        try await database.withTransaction { connection in
            var query = PostgresQuery(unsafeSQL: sql)
            query.binds.append(parameter)
            try await connection.query(query, logger: context.logger)
        }
    }
}

/// The database a `postgres.sql` node opened from its `url` in `start`, and the task that runs it
/// until `close`.
private final class OpenedDatabase: Sendable {
    let state = Mutex<(store: PostgresStore, run: Task<Void, Never>)?>(nil)
}
