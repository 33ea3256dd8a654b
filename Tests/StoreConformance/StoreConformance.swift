import EnchufeCore
import Foundation
import NIOCore

/// The behaviour every store backend must have, written once. Each backend's tests run every case
/// against a fresh, migrated store of their own:
///
///     @Test(arguments: StoreConformance.cases)
///     func conformance(_ check: StoreConformance.Case) async throws { try await check.run(makeStore()) }
public enum StoreConformance {
    public struct Case: Sendable, CustomStringConvertible {
        public let name: String
        public let run: @Sendable (any Store) async throws -> Void
        public var description: String { name }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
        if !condition { throw Failure(description: "line \(line): \(message())") }
    }

    static func equal<T: Equatable>(_ a: T, _ b: T, _ what: String, line: Int = #line) throws {
        if a != b { throw Failure(description: "line \(line): \(what): got \(a), expected \(b)") }
    }

    static let t0 = Date(timeIntervalSince1970: 1_774_742_400)  // 2026-03-29T00:00:00Z, the spring DST day

    static func reading(
        tenant: String = "t1", series: String = "ES0021000000000001AB", quantity: String = "consumption",
        at offset: Double = 0, value: Double = 1.5, quality: Quality = .measured, unit: String = "kWh"
    ) -> Reading {
        Reading(
            tenant: tenant, series: series, quantity: quantity, ts: t0.addingTimeInterval(offset), resolution: "PT1H",
            value: value, unit: unit, quality: quality, source: "test/node")
    }

    static func stored(_ store: any Store, _ r: Reading) async throws -> StoredReading? {
        try await store.readings(ReadingQuery(tenant: r.tenant, series: [r.series], quantity: r.quantity, from: r.ts, to: r.ts.addingTimeInterval(0.001))).first
    }

    public static let cases: [Case] = [
        Case(name: "a named value is claimed once among concurrent claims, removed, and purged once expired") { store in
            let key = NamedKey(tenant: "t1", namespace: "webhook/f/hook", name: "hmac:abc")
            let later = Date().addingTimeInterval(3600)
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<16 { group.addTask { try await store.claim(key, value: "\(i)", expiresAt: later) } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            try equal(wins, 1, "claims won")
            try expect(try await store.value(key, now: Date()) != nil, "the value is there")
            try await store.setValue(key, "answer", expiresAt: later)
            try equal(try await store.value(key, now: Date()), "answer", "updated value")
            try await store.removeValue(key)
            try equal(try await store.value(key, now: Date()), nil, "removed")
            try expect(try await store.claim(key, value: "again", expiresAt: Date().addingTimeInterval(-1)), "claimed after removal")
            try equal(try await store.value(key, now: Date()), nil, "an expired value is not shown")
            try expect(try await store.claim(key, value: "over", expiresAt: later), "an expired value can be claimed again")
            let other = NamedKey(tenant: "t1", namespace: "webhook/f/hook", name: "hmac:old")
            _ = try await store.claim(other, value: "x", expiresAt: Date().addingTimeInterval(-10))
            try equal(try await store.purgeExpiredValues(now: Date()), 1, "purged")
            try equal(try await store.value(key, now: Date()), "over", "the live value stays")
        },
        Case(name: "a named value with no expiry is kept for good, and names are apart by tenant and namespace") { store in
            let key = NamedKey(tenant: "t1", namespace: "datadis-ledger/abc", name: "q")
            try await store.setValue(key, "first", expiresAt: nil)
            try expect(try await !store.claim(key, value: "second", expiresAt: nil), "a value that never expires cannot be claimed")
            let farFuture = Date().addingTimeInterval(10 * 365 * 86_400)
            try equal(try await store.purgeExpiredValues(now: farFuture), 0, "nothing purged")
            try equal(try await store.value(key, now: farFuture), "first", "still there years later")
            try equal(try await store.value(NamedKey(tenant: "t2", namespace: key.namespace, name: "q"), now: Date()), nil, "another tenant's")
            try equal(try await store.value(NamedKey(tenant: "t1", namespace: "datadis-ledger/xyz", name: "q"), now: Date()), nil, "another namespace's")
            try expect(try await store.claim(NamedKey(tenant: "t2", namespace: key.namespace, name: "q"), value: "x", expiresAt: nil), "another tenant claims its own")
            try equal(
                try await store.checkpoint(CheckpointKey(tenant: "t1", flow: "datadis-ledger", node: "abc", key: "q")), nil,
                "named values are not checkpoints")
        },
        Case(name: "a batch with a reading the store cannot hold is refused whole, and nothing traps") { store in
            var bad: [Reading] = []
            for seconds in [1e300, -1e300, 1e17, -1, 4_102_444_800, .nan, .infinity] {
                var r = reading(at: 0)
                r.ts = Date(timeIntervalSince1970: seconds)
                bad.append(r)
            }
            bad.append(reading(value: .nan))
            bad.append(reading(value: -.infinity))
            bad.append(reading(series: "ES0021\u{0}000000000001AB"))
            bad.append(reading(series: String(repeating: "x", count: 5_000_000)))
            bad.append(reading(quantity: ""))
            for r in bad {
                do {
                    _ = try await store.upsert([reading(at: 7200), r])
                    throw Failure(description: "stored \(r.series.prefix(30)) \(r.ts.timeIntervalSince1970) \(r.value)")
                } catch is PermanentError {}
            }
            try equal(try await store.readings(ReadingQuery(tenant: "t1")).count, 0, "nothing of the refused batches")
        },
        Case(name: "a new reading is inserted with revision 1 and a sequence number") { store in
            let summary = try await store.upsert([reading()])
            try equal(summary, UpsertSummary(inserted: 1), "summary")
            let s = try await stored(store, reading())
            try equal(s?.reading, reading(), "stored reading")
            try equal(s?.revision, 1, "revision")
            try expect((s?.seq ?? 0) > 0, "seq must be positive")
        },
        Case(name: "the same value and quality again changes nothing") { store in
            _ = try await store.upsert([reading()])
            let before = try await stored(store, reading())
            var again = reading()
            again.source = "other/node"
            let summary = try await store.upsert([again])
            try equal(summary, UpsertSummary(unchanged: 1), "summary")
            let after = try await stored(store, reading())
            try equal(after, before, "stored row (revision, seq and source unchanged)")
        },
        Case(name: "a changed value bumps the revision and takes a new sequence number") { store in
            _ = try await store.upsert([reading(value: 1.5)])
            let before = try await stored(store, reading())
            let summary = try await store.upsert([reading(value: 2.25)])
            try equal(summary, UpsertSummary(updated: 1), "summary")
            let after = try await stored(store, reading())
            try equal(after?.reading.value, 2.25, "value")
            try equal(after?.revision, 2, "revision")
            try expect((after?.seq ?? 0) > (before?.seq ?? 0), "seq must grow on change")
        },
        Case(name: "an estimated value never replaces a measured one") { store in
            _ = try await store.upsert([reading(value: 1.5, quality: .measured)])
            let summary = try await store.upsert([reading(value: 9, quality: .estimated)])
            try equal(summary, UpsertSummary(unchanged: 1), "summary")
            let s = try await stored(store, reading())
            try equal(s?.reading.value, 1.5, "value")
            try equal(s?.reading.quality, .measured, "quality")
            try equal(s?.revision, 1, "revision")
        },
        Case(name: "a forecast replaces neither a measured nor an estimated value") { store in
            _ = try await store.upsert([reading(series: "a", value: 1, quality: .measured), reading(series: "b", value: 1, quality: .estimated)])
            _ = try await store.upsert([reading(series: "a", value: 5, quality: .forecast), reading(series: "b", value: 5, quality: .forecast)])
            try equal(try await stored(store, reading(series: "a"))?.reading.value, 1, "measured kept")
            try equal(try await stored(store, reading(series: "b"))?.reading.value, 1, "estimated kept")
        },
        Case(name: "a measured value replaces an estimated one") { store in
            _ = try await store.upsert([reading(value: 3, quality: .estimated)])
            let summary = try await store.upsert([reading(value: 3, quality: .measured)])
            try equal(summary, UpsertSummary(updated: 1), "summary: a quality change is a change")
            let s = try await stored(store, reading())
            try equal(s?.reading.quality, .measured, "quality")
            try equal(s?.revision, 2, "revision")
        },
        Case(name: "an estimated value replaces an estimated one") { store in
            _ = try await store.upsert([reading(value: 3, quality: .estimated)])
            _ = try await store.upsert([reading(value: 4, quality: .estimated)])
            try equal(try await stored(store, reading())?.reading.value, 4, "value")
        },
        Case(name: "readings page by key in (series, quantity, ts) order, each once") { store in
            var all: [Reading] = []
            for series in ["ES0021000000000002AB", "ES0021000000000001AB"] {
                for quantity in ["surplus", "consumption"] {
                    all += (0..<4).map { reading(series: series, quantity: quantity, at: Double(3 - $0) * 3600, value: Double($0)) }
                }
            }
            _ = try await store.upsert(all + [reading(tenant: "t2")])
            var pages: [[Reading]] = []
            for try await page in store.readingPages(ReadingQuery(tenant: "t1"), pageSize: 3) { pages.append(page.map(\.reading)) }
            try equal(pages.map(\.count), [3, 3, 3, 3, 3, 1], "page sizes")
            let sorted = all.sorted { ($0.series, $0.quantity, $0.ts) < ($1.series, $1.quantity, $1.ts) }
            try equal(pages.flatMap { $0 }, sorted, "readings in key order, each once")
            var filtered = 0
            for try await page in store.readingPages(ReadingQuery(tenant: "t1", quantity: "surplus", from: t0.addingTimeInterval(3600)), pageSize: 2) { filtered += page.count }
            try equal(filtered, 6, "the query's filters hold across pages")
        },
        Case(name: "written CSV is the csv export of the readings, byte for byte") { store in
            // Values and texts where renderings differ: exponents, negative zero, long fractions,
            // integers, fields to quote, milliseconds.
            let values: [Double] = [0, -0.0, 1, -3, 0.1, 1.0 / 3, 2.5e-7, 0.0001, 0.00001, 123456.789, 1e15, 1.5e15, 98765432109876.5, 1234567890123456.5, -9e15, -1e-300, 1e22]
            var all = values.enumerated().map { reading(at: Double($0.offset) * 900, value: $0.element) }
            all.append(reading(series: "device:a,b", quantity: "power \"ac\"", at: 0.25, value: 7.5, unit: "k\"W;"))
            all.append(reading(series: "device:a,b", quantity: "power \"ac\"", at: 3600.5, value: -2, quality: .estimated))
            all.append(reading(series: "=HYPERLINK(\"http://x\")", quantity: "@sum", at: 7200, value: 1, unit: "-kWh"))
            all.append(reading(tenant: "t2"))
            _ = try await store.upsert(all)
            var writer = ExportWriter(.csv)
            let expected = writer.rows(try await store.readings(ReadingQuery(tenant: "t1")))
            var written = ""
            try await store.writeCSV(ReadingQuery(tenant: "t1")) { written += String(buffer: $0) }
            try equal(written, expected, "CSV rows")
            try expect(expected.contains("\"device:a,b\",\"power \"\"ac\"\"\""), "quoted fields in \(expected)")
            try expect(expected.contains("\"'=HYPERLINK(\"\"http://x\"\")\",\"'@sum\"") && expected.contains("\"'-kWh\""), "no formulas in \(expected)")
            written = ""
            try await store.writeCSV(ReadingQuery(tenant: "t1", series: ["device:a,b"], from: t0.addingTimeInterval(3600))) { written += String(buffer: $0) }
            try equal(written.split(separator: "\n").count, 1, "the query's filters: \(written)")
        },
        Case(name: "the change sequence pages through inserts and changes in order") { store in
            _ = try await store.upsert((0..<5).map { reading(at: Double($0) * 3600, value: Double($0)) })
            _ = try await store.upsert([reading(at: 0, value: 100)])  // changes the first again
            _ = try await store.upsert([reading(at: 3600, value: 1)])  // unchanged: no new seq
            let page1 = try await store.changes(tenant: "t1", after: 0, limit: 3)
            try equal(page1.count, 3, "page size")
            let page2 = try await store.changes(tenant: "t1", after: page1.last!.seq, limit: 10)
            let all = page1 + page2
            try equal(all.count, 5, "one row per reading, at its latest change")
            try equal(all.map(\.seq), all.map(\.seq).sorted(), "seq order")
            try equal(Set(all.map(\.seq)).count, 5, "distinct seq")
            try equal(all.last?.reading.value, 100, "the changed reading comes last")
            try equal(try await store.changes(tenant: "t1", after: all.last!.seq, limit: 10).count, 0, "nothing after the last")
        },
        Case(name: "readings and changes are separated by tenant") { store in
            _ = try await store.upsert([reading(tenant: "a", value: 1), reading(tenant: "b", value: 2)])
            let a = try await store.changes(tenant: "a", after: 0, limit: 10)
            try equal(a.map(\.reading.value), [1], "tenant a's changes")
            let b = try await store.readings(ReadingQuery(tenant: "b"))
            try equal(b.map(\.reading.value), [2], "tenant b's readings")
            try equal(try await store.readings(ReadingQuery(tenant: "c")).count, 0, "an unknown tenant sees nothing")
        },
        Case(name: "queries filter by series, quantity and a half-open time range") { store in
            _ = try await store.upsert([
                reading(series: "s1", at: 0), reading(series: "s1", at: 3600), reading(series: "s1", at: 7200),
                reading(series: "s1", quantity: "surplus", at: 3600), reading(series: "s2", at: 3600),
            ])
            let r = try await store.readings(
                ReadingQuery(tenant: "t1", series: ["s1"], quantity: "consumption", from: t0.addingTimeInterval(3600), to: t0.addingTimeInterval(7200)))
            try equal(r.map(\.reading.ts), [t0.addingTimeInterval(3600)], "from inclusive, to exclusive")
            let both = try await store.readings(ReadingQuery(tenant: "t1", series: ["s1", "s2"], quantity: "consumption"))
            try equal(both.count, 4, "several series")
        },
        Case(name: "timestamps keep millisecond precision and readings keep every field") { store in
            var r = reading(quantity: "power", value: -0.125, unit: "kW")
            r.ts = Date(timeIntervalSince1970: 1_774_742_400.123)
            r.resolution = "PT0S"
            r.quality = .computed
            _ = try await store.upsert([r])
            try equal(try await stored(store, r)?.reading, r, "round trip")
        },
        Case(name: "a batch with the same key twice keeps the last value") { store in
            let summary = try await store.upsert([reading(value: 1), reading(value: 2)])
            try equal(summary, UpsertSummary(inserted: 1, updated: 1), "summary")
            try equal(try await stored(store, reading())?.reading.value, 2, "value")
        },
        Case(name: "supplies are saved, updated per validity period and listed by tenant") { store in
            let s1 = SupplyPoint(
                tenant: "t1", cups: "ES0021000000000001AB", tariff: "2.0TD", zone: "peninsula", distributorCode: "2",
                pointType: 5, contractedPowerKW: [3.45, 3.45], coefficient: 0.25, community: "sol", validFrom: "2025-01-01",
                validTo: "2025-12-31", raw: ["cups": "ES0021000000000001AB"])
            var s2 = s1
            s2.validFrom = "2026-01-01"
            s2.validTo = nil
            s2.contractedPowerKW = [4.6, 4.6]
            s2.pv = PVSystem(kwp: 4.2, tilt: 25, azimuth: 170, losses: 0.12, inverterKW: 3.6, latitude: 40.4, longitude: -3.7, altitude: 650)
            s2.market = MarketOrder(bid: 0.14, ask: nil)
            try await store.saveSupply(s1)
            try await store.saveSupply(s2)
            var s1b = s1
            s1b.coefficient = 0.5
            try await store.saveSupply(s1b)
            try await store.saveSupply(SupplyPoint(tenant: "t2", cups: "ES0021000000000002CD"))
            let list = try await store.supplies(tenant: "t1")
            try equal(list, [s1b, s2], "t1's supplies, one row per validity period")
            try equal(try await store.supplies(tenant: "t2").map(\.cups), ["ES0021000000000002CD"], "t2's")
            try equal(try await store.supplyTenants(), ["t1", "t2"], "the tenants with supplies, each once")
        },
        Case(name: "checkpoints are saved, overwritten and read per node") { store in
            let k1 = CheckpointKey(tenant: "t1", flow: "f", node: "n", key: "position")
            let k2 = CheckpointKey(tenant: "t1", flow: "f", node: "m", key: "position")
            try equal(try await store.checkpoint(k1)?.value, nil, "absent")
            try await store.saveCheckpoint(k1, value: "a")
            try await store.saveCheckpoint(k1, value: "b")
            try await store.saveCheckpoint(k2, value: "c")
            try equal(try await store.checkpoint(k1)?.value, "b", "overwritten")
            try equal(try await store.checkpoint(k2)?.value, "c", "other node")
        },
        Case(name: "dead letters keep the error and the message, and are listed, replayed and purged") { store in
            let message: JSONValue = ["payload": ["w": 12.5], "topic": "devices/inv-07"]
            let id1 = try await store.addDeadLetter(NewDeadLetter(tenant: "t1", flow: "f", node: "n", error: "boom", message: message, attempts: 5))
            let id2 = try await store.addDeadLetter(NewDeadLetter(tenant: "t2", flow: "f", node: "n", error: "bang", message: "x", attempts: 1))
            try expect(id2 > id1, "ids grow")
            let d = try await store.deadLetter(id: id1)
            try equal(d?.message, message, "message")
            try equal(d?.error, "boom", "error")
            try equal(d?.attempts, 5, "attempts")
            try equal(try await store.deadLetters(tenant: nil, limit: 10).map(\.id), [id2, id1], "newest first")
            try equal(try await store.deadLetters(tenant: "t1", limit: 10).map(\.id), [id1], "by tenant")
            try await store.markDeadLetterReplayed(id: id1, at: t0)
            try equal(try await store.deadLetter(id: id1)?.replayedAt, t0, "replayed at")
            try equal(try await store.purgeDeadLetters(tenant: "t1"), 1, "purged t1's")
            try equal(try await store.deadLetters(tenant: nil, limit: 10).map(\.id), [id2], "t2's remain")
        },
        Case(name: "a lease has one holder at a time, a new fence when it changes hands, and fences checkpoint and named-value writes") { store in
            let key = CheckpointKey(tenant: "t", flow: "f", node: "pull", key: "period")
            let a = try await store.acquireLease("t/f/pull", holder: "a", ttl: .seconds(30))
            try equal(a?.fence, 1, "first holder")
            try equal(try await store.acquireLease("t/f/pull", holder: "b", ttl: .seconds(30)), nil, "held by a")
            try equal(try await store.acquireLease("t/f/pull", holder: "a", ttl: .seconds(30))?.fence, 1, "a keeps it, same fence")
            try equal(try await store.renewLease(a!, ttl: .seconds(30)), true, "renewed")
            try await Lease.$current.withValue(a) { try await store.saveCheckpoint(key, value: "by a") }
            try equal(try await store.checkpoint(key)?.value, "by a", "fenced write while held")

            // a lets it expire (ttl 0): b takes it with the next fence; a's writes are refused.
            _ = try await store.acquireLease("t/f/pull", holder: "a", ttl: .zero)
            let b = try await store.acquireLease("t/f/pull", holder: "b", ttl: .seconds(30))
            try equal(b?.fence, 2, "taken over")
            try equal(try await store.renewLease(a!, ttl: .seconds(30)), false, "a cannot renew")
            var refused = false
            do {
                try await Lease.$current.withValue(a) { try await store.saveCheckpoint(key, value: "by a, too late") }
            } catch is LeaseLost {
                refused = true
            }
            try expect(refused, "a write fenced with a lost lease is refused")
            let ledger = NamedKey(tenant: "t", namespace: "datadis-ledger/x", name: "q")
            var valueRefused = false
            do {
                try await Lease.$current.withValue(a) { try await store.setValue(ledger, "by a, too late", expiresAt: nil) }
            } catch is LeaseLost {
                valueRefused = true
            }
            try expect(valueRefused, "a named value set under a lost lease is refused")
            try equal(try await store.value(ledger, now: Date()), nil, "and not written")
            try await Lease.$current.withValue(b) { try await store.setValue(ledger, "by b", expiresAt: nil) }
            try equal(try await store.value(ledger, now: Date()), "by b", "the holder's named value")
            var upsertRefused = false
            do {
                _ = try await Lease.$current.withValue(a) { try await store.upsert([reading(series: "lease:a")]) }
            } catch is LeaseLost {
                upsertRefused = true
            }
            try expect(upsertRefused, "readings under a lost lease are refused")
            try equal(try await store.readings(ReadingQuery(tenant: "t1", series: ["lease:a"])).count, 0, "and none written")
            _ = try await Lease.$current.withValue(b) { try await store.upsert([reading(series: "lease:b")]) }
            try equal(try await store.readings(ReadingQuery(tenant: "t1", series: ["lease:b"])).count, 1, "the holder's readings are written")
            try await Lease.$current.withValue(b) { try await store.saveCheckpoint(key, value: "by b") }
            try equal(try await store.checkpoint(key)?.value, "by b", "the holder's write")
            try await store.releaseLease(b!)
            try equal(try await store.acquireLease("t/f/pull", holder: "c", ttl: .seconds(30))?.fence, 3, "released: taken at once")
            try equal(try await store.leases().map(\.holder), ["c"], "listed")
        },
        Case(name: "instances keep their last heartbeat, are listed by id and take themselves out") { store in
            let a = InstanceRecord(id: "host-a-11", host: "host-a", pid: 11, http: "10.0.0.1:8080", startedAt: t0, heartbeatAt: t0)
            try await store.saveInstance(a)
            try await store.saveInstance(InstanceRecord(id: "host-b-12", host: "host-b", pid: 12, http: "10.0.0.2:8080", startedAt: t0, heartbeatAt: t0))
            var beat = a
            beat.heartbeatAt = t0.addingTimeInterval(5)
            try await store.saveInstance(beat)
            try equal(try await store.instances(), [beat, InstanceRecord(id: "host-b-12", host: "host-b", pid: 12, http: "10.0.0.2:8080", startedAt: t0, heartbeatAt: t0)], "by id, last heartbeat")
            try await store.removeInstance(id: "host-a-11")
            try equal(try await store.instances().map(\.id), ["host-b-12"], "removed")
        },
        Case(name: "API keys are stored by hash, found by hash and revoked") { store in
            let key = APIKeyRecord(id: "k1", tenant: "t1", name: "billing", scopes: ["read", "ingest"], hash: "abc123", createdAt: t0)
            try await store.saveAPIKey(key)
            try await store.saveAPIKey(APIKeyRecord(id: "k2", tenant: "t2", name: "x", scopes: ["admin"], hash: "def456", createdAt: t0))
            try equal(try await store.apiKey(hash: "abc123"), key, "found by hash")
            try equal(try await store.apiKey(hash: "nope"), nil, "unknown hash")
            try equal(try await store.apiKeys(tenant: "t1").map(\.id), ["k1"], "by tenant")
            try equal(try await store.revokeAPIKey(id: "k1", at: t0), true, "revoked")
            try equal(try await store.apiKey(hash: "abc123")?.revokedAt, t0, "revoked at")
            try equal(try await store.revokeAPIKey(id: "missing", at: t0), false, "no such key")
        },
        Case(name: "the audit log appends entries and lists them newest first") { store in
            try await store.appendAudit(tenant: "t1", actor: "cli", action: "keys.create", detail: ["id": "k1"], at: t0)
            try await store.appendAudit(tenant: "t1", actor: "k1", action: "export", detail: ["name": "curves"], at: t0.addingTimeInterval(1))
            try await store.appendAudit(tenant: "t2", actor: "cli", action: "dlq.purge", detail: [:], at: t0)
            let log = try await store.auditLog(tenant: "t1", limit: 10)
            try equal(log.map(\.action), ["export", "keys.create"], "newest first, tenant only")
            try equal(log.last?.detail, ["id": "k1"], "detail")
        },
        Case(name: "an alert is saved only from the version read: one of concurrent first saves wins, with its changes of state") { store in
            let key = AlertKey(tenant: "t1", flow: "f", node: "saturated", series: "interconnection:ES>FR", quantity: "utilisation")
            try equal(try await store.alert(key), nil, "no state before the first save")
            func raised(by writer: Int) -> (AlertState, AlertEvent) {
                let state = AlertState(
                    key: key, name: "es-fr", message: "saturated", raised: true, since: t0, lastTs: t0.addingTimeInterval(900),
                    lastEnd: t0.addingTimeInterval(1800), value: 90 + Double(writer), updatedAt: t0)
                let event = AlertEvent(
                    key: key, name: "es-fr", message: "saturated", raised: true, at: t0.addingTimeInterval(900), since: t0,
                    value: 90 + Double(writer), recordedAt: t0)
                return (state, event)
            }
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<8 {
                    group.addTask {
                        let (state, event) = raised(by: i)
                        return try await store.saveAlert(state, events: [event])
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            try equal(wins, 1, "first saves won")
            let events = try await store.alertEvents(tenant: "t1", limit: 10)
            try equal(events.count, 1, "changes of state kept: only the winner's")
            guard var saved = try await store.alert(key) else { throw Failure(description: "the saved state is not there") }
            try equal(saved.version, 1, "version after the first save")
            try equal(saved.value, events[0].value, "the state is the winner's")
            try equal(saved.since, t0, "since")
            try equal(saved.lastEnd, t0.addingTimeInterval(1800), "last end")
            try equal(events[0].key, key, "the change's key")
            try equal(events[0].at, t0.addingTimeInterval(900), "the change's time")

            saved.raised = false
            saved.pendingSince = nil
            let cleared = AlertEvent(
                key: key, name: "es-fr", message: "saturated", raised: false, at: t0.addingTimeInterval(3600), since: t0.addingTimeInterval(2700),
                value: 80, recordedAt: t0.addingTimeInterval(10))
            try expect(try await store.saveAlert(saved, events: [cleared]), "a save from the version read")
            try expect(try await !store.saveAlert(saved, events: [cleared]), "a second save from the same version is refused")
            try equal(try await store.alert(key)?.version, 2, "version after the second save")
            try equal(try await store.alertEvents(tenant: "t1", limit: 10).map(\.raised), [false, true], "changes newest first")
            try equal(try await store.alertEvents(tenant: "t1", limit: 1).count, 1, "limit")
        },
        Case(name: "alerts are listed raised first and apart by tenant, and old changes of state are purged") { store in
            func key(_ tenant: String, _ series: String) -> AlertKey {
                AlertKey(tenant: tenant, flow: "f", node: "n", series: series, quantity: "spread")
            }
            for (tenant, series, raised) in [("t1", "a", false), ("t1", "b", true), ("t2", "c", true)] {
                let k = key(tenant, series)
                let event = AlertEvent(key: k, name: "spread", message: "m", raised: true, at: t0, since: t0, value: 1, recordedAt: t0)
                try expect(
                    try await store.saveAlert(AlertState(key: k, name: "spread", message: "m", raised: raised, updatedAt: t0), events: [event]),
                    "saved \(series)")
            }
            try equal(try await store.alerts(tenant: "t1").map(\.key.series), ["b", "a"], "raised first, one tenant")
            try equal(try await store.alerts(tenant: nil).count, 3, "every tenant")
            try equal(try await store.alertEvents(tenant: "t2", limit: 10).map(\.key.series), ["c"], "another tenant's changes")
            try equal(try await store.purgeAlertEvents(before: t0.addingTimeInterval(1)), 3, "purged")
            try equal(try await store.alertEvents(tenant: nil, limit: 10).count, 0, "none left")
            try equal(try await store.alerts(tenant: nil).count, 3, "the states stay")
        },
        Case(name: "forecasts keep every issue; the latest one, or the one current at an instant, is chosen per interval and model") { store in
            func f(_ at: Double, _ hoursBefore: Double, _ value: Double, model: String = "pv", tenant: String = "t1", series: String = "ES0021000000000001AB") -> Forecast {
                Forecast(
                    reading(tenant: tenant, series: series, quantity: "generation", at: at, value: value, quality: .forecast),
                    issuedAt: t0.addingTimeInterval(at - hoursBefore * 3600), model: model)
            }
            try await store.saveForecasts([
                f(0, 48, 1), f(0, 24, 2), f(0, 1, 3), f(3600, 24, 5), f(0, 24, 9, model: "other"),
                f(0, 24, 7, tenant: "t2"), f(0, 24, 8, series: "ES0021000000000002ZZ"),
            ])
            let day = ForecastQuery(tenant: "t1", series: ["ES0021000000000001AB"], quantity: "generation", from: t0, to: t0.addingTimeInterval(86_400))
            let latest = try await store.forecasts(day)
            try equal(latest.map(\.reading.value), [9, 3, 5], "latest per interval and model, in (ts, model) order")
            try equal(latest[1].issuedAt, t0.addingTimeInterval(-3600), "issued_at")
            try equal(latest.map(\.model), ["other", "pv", "pv"], "model")
            try equal(latest.first?.reading.quality, .forecast, "a forecast reads as one")
            var asOf = day
            asOf.vintage = t0.addingTimeInterval(-12 * 3600)
            try equal(try await store.forecasts(asOf).map(\.reading.value), [9, 2, 5], "current 12 hours before: the one issued an hour before was not issued yet")
            var every = day
            every.vintage = nil
            try equal(try await store.forecasts(every).map(\.reading.value), [9, 1, 2, 3, 5], "every issue, oldest first per model")
            try equal(try await store.forecasts(ForecastQuery(tenant: "t1", from: t0, to: t0.addingTimeInterval(1))).count, 3, "any series and quantity")
            try equal(try await store.forecasts(ForecastQuery(tenant: "t2", from: t0, to: t0.addingTimeInterval(86_400))).map(\.reading.value), [7], "another tenant's")

            try await store.saveForecasts([f(0, 1, 3.5)])
            try equal(try await store.forecasts(day)[1].reading.value, 3.5, "the same issue again replaces its value")
            var refused = false
            do { try await store.saveForecasts([f(7200, 1, 4), f(10_800, 1, .nan)]) } catch { refused = true }
            try expect(refused, "a batch with a value that is not finite is refused")
            try equal(try await store.forecasts(every).count, 5, "and nothing of it is written")
            try equal(try await store.purgeForecasts(issuedBefore: t0.addingTimeInterval(-12 * 3600)), 6, "issues older than 12 hours purged, every tenant's")
            try equal(try await store.forecasts(every).map(\.reading.value), [3.5], "what is left")
        },
        Case(name: "totals are summed by the store per quantity, per series and per hour, over one tenant's readings in the interval") { store in
            let a = "ES0021000000000001AB", b = "ES0021000000000002ZZ"
            _ = try await store.upsert([
                reading(series: a, at: 0, value: 1), reading(series: a, at: 900, value: 2), reading(series: a, at: 3600, value: 4),
                reading(series: b, at: 1800, value: 8), reading(series: b, quantity: "generation", at: 0, value: 16),
                reading(series: b, quantity: "soc", at: 0, value: 50), reading(tenant: "t2", series: a, at: 0, value: 32),
                reading(series: a, at: 7200, value: 64), reading(series: "ES0021000000000003XX", at: 0, value: 128),
            ])
            let hours = try await store.totals(ReadingTotalsQuery(
                tenant: "t1", series: [a, b], quantities: ["consumption", "generation"], from: t0, to: t0.addingTimeInterval(7200), bucket: 3600))
            try equal(hours, [
                ReadingTotal(series: nil, quantity: "consumption", start: t0, sum: 11, count: 3),
                ReadingTotal(series: nil, quantity: "consumption", start: t0.addingTimeInterval(3600), sum: 4, count: 1),
                ReadingTotal(series: nil, quantity: "generation", start: t0, sum: 16, count: 1),
            ], "per quantity and hour")
            let perSeries = try await store.totals(ReadingTotalsQuery(
                tenant: "t1", series: [a, b], quantities: ["consumption", "generation"], from: t0, to: t0.addingTimeInterval(7200), perSeries: true))
            try equal(perSeries, [
                ReadingTotal(series: a, quantity: "consumption", start: nil, sum: 7, count: 3),
                ReadingTotal(series: b, quantity: "consumption", start: nil, sum: 8, count: 1),
                ReadingTotal(series: b, quantity: "generation", start: nil, sum: 16, count: 1),
            ], "per series over the interval")
            try equal(try await store.totals(ReadingTotalsQuery(tenant: "t1", series: [], quantities: ["consumption"], from: t0, to: t0.addingTimeInterval(7200))), [], "no series, no sums")
        },
        Case(name: "a forecast neither changes nor shows among the readings") { store in
            let measured = reading(quantity: "generation", value: 2.5)
            _ = try await store.upsert([measured])
            let before = try await stored(store, measured)
            try await store.saveForecasts([Forecast(reading(quantity: "generation", value: 9, quality: .forecast), issuedAt: t0.addingTimeInterval(-86_400), model: "pv")])
            let after = try await stored(store, measured)
            try equal(after?.reading.value, 2.5, "the measured value")
            try equal(after?.revision, before?.revision, "revision")
            try equal(after?.seq, before?.seq, "change sequence")
            try equal(try await store.changes(tenant: "t1", after: 0, limit: 10).count, 1, "no change for the forecast")
        },
        Case(name: "migrating twice applies nothing the second time") { store in
            try equal(try await store.migrate(), [String](), "second migration")
            try await store.ping()
        },
    ]
}
