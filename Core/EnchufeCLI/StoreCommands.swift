import ArgumentParser
import EnchufeCore
import Foundation

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Create or upgrade the store schema (run does it too).")

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let (name, applied) = try await storeOptions.withStore(migrated: false) { store in (store.displayName, try await store.migrate()) }
        print(applied.isEmpty ? "\(name): schema up to date" : "\(name): applied \(applied.joined(separator: ", "))")
    }
}

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "The dead-letter store: messages that failed with no errors wire.",
        subcommands: [List.self, Show.self, Replay.self, Purge.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, newest first.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Only this tenant's.") var tenant: String?
        @Option(help: "At most this many.") var limit = 100

        func run() async throws {
            try await storeOptions.withStore { store in
                let letters = try await store.deadLetters(tenant: tenant, limit: limit)
                for d in letters {
                    print("\(d.id)\t\(ISO8601.string(d.createdAt))\t\(d.tenant)\t\(d.flow)/\(d.node)\t\(d.replayedAt == nil ? "" : "replayed ")\(d.error)")
                }
                if letters.isEmpty { print("no dead letters") }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter with its message.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Dead letter id.") var id: Int64

        func run() async throws {
            try await storeOptions.withStore { store in
                guard let d = try await store.deadLetter(id: id) else { throw CommandFailure("no dead letter \(id)") }
                print(d.json.prettyText())
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete dead letters.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Only this tenant's.") var tenant: String?

        func run() async throws {
            try await storeOptions.withStore { store in
                let n = try await store.purgeDeadLetters(tenant: tenant)
                try await store.appendAudit(
                    tenant: tenant ?? "*", actor: "cli", action: "dlq.purge", detail: ["deleted": .number(Double(n))], at: Date())
                print("deleted \(n) dead letter(s)")
            }
        }
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "API keys: each belongs to one tenant, with scopes read, ingest, admin, totals (a community dashboard's totals only).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; it is printed once, only its hash is stored.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "The tenant the key belongs to.") var tenant: String
        @Option(name: .customLong("scope"), help: "read, ingest, admin or totals (repeat for several).") var scopes: [String]
        @Option(help: "A name to recognise the key by.") var name = ""

        func run() async throws {
            try await storeOptions.withStore { store in
                do {
                    let (record, key) = try await APIKeys.create(tenant: tenant, scopes: scopes, name: name, at: Date(), store: store)
                    print(key)
                    FileHandle.standardError.write(Data("key \(record.id) for tenant \(record.tenant), scopes \(record.scopes.joined(separator: ",")): shown once, store it now\n".utf8))
                } catch let error as APIKeyError {
                    throw CommandFailure(error.description)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never the keys themselves).")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Only this tenant's.") var tenant: String?

        func run() async throws {
            try await storeOptions.withStore { store in
                let keys = try await store.apiKeys(tenant: tenant)
                for k in keys {
                    let state = k.revokedAt.map { "revoked \(ISO8601.string($0))" } ?? "active"
                    let used = k.lastUsedAt.map { "last used \(ISO8601.string($0))" } ?? "never used"
                    print("\(k.id)\t\(k.tenant)\t\(k.scopes.joined(separator: ","))\t\(k.name)\tcreated \(ISO8601.string(k.createdAt))\t\(state)\t\(used)")
                }
                if keys.isEmpty { print("no keys") }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by its id: it stops working at once.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id (from keys list).") var id: String

        func run() async throws {
            try await storeOptions.withStore { store in
                let now = Date()
                guard let key = try await store.apiKeys(tenant: nil).first(where: { $0.id == id }), try await store.revokeAPIKey(id: id, at: now) else {
                    throw CommandFailure("no key \(id)")
                }
                try await store.appendAudit(tenant: key.tenant, actor: "cli", action: "key.revoke", detail: ["id": .string(id)], at: now)
                print("revoked \(id)")
            }
        }
    }
}
