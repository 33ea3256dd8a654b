import EnchufeCore
import Foundation
import NIOCore
import TestSupport
import Testing

@testable import Postgres

/// The text that `store.readings` sends PostgreSQL with `COPY ... FROM STDIN`, checked without a server.
@Suite struct PostgresCopyTextTests {
    /// Integers are written digit by digit into the buffer: the same text as Swift's own.
    @Test func decimalsAreWrittenAsSwiftWritesThem() {
        var random = SystemRandomNumberGenerator()
        let edges: [Int64] = [0, 1, -1, 9, 10, -10, 99, 100, Int64(Int32.max), Int64(Int32.min), .max, .min, .max - 1, .min + 1]
        let values = edges + (0..<2000).map { _ in Int64.random(in: .min ... .max, using: &random) >> Int64.random(in: 0...62, using: &random) }
        for value in values {
            var buffer = ByteBufferAllocator().buffer(capacity: 32)
            buffer.writeDecimal(value)
            #expect(buffer.readString(length: buffer.readableBytes) == String(value))
        }
        var small = ByteBufferAllocator().buffer(capacity: 8)
        small.writeDecimal(Int32(-2_147_483_648))
        small.writeDecimal(UInt8(255))
        #expect(small.readString(length: small.readableBytes) == "-2147483648255")
    }

    /// A row: order, round, the key, milliseconds, and text fields with COPY's escapes; a key that
    /// repeats goes to a second round.
    @Test func rowsCarryTheirRoundAndEscapedText() {
        let ts = Date(timeIntervalSince1970: 1_774_742_400.25)
        let readings = [
            Reading(tenant: "demo", series: "device:a\tb", quantity: "power", ts: ts, resolution: "PT0S", value: 1.5, unit: "W", quality: .measured, source: "x\\y"),
            Reading(tenant: "demo", series: "device:c", quantity: "power", ts: ts, resolution: "PT0S", value: -2, unit: "W", quality: .measured, source: "s"),
            Reading(tenant: "demo", series: "device:a\tb", quantity: "power", ts: ts, resolution: "PT0S", value: 3, unit: "W", quality: .estimated, source: "line\nbreak"),
        ]
        let (chunks, rounds) = PostgresStore.copyText(readings)
        var text = ""
        for var chunk in chunks { text += chunk.readString(length: chunk.readableBytes) ?? "" }
        #expect(rounds == [2, 1])
        #expect(text == """
            0\t1\tdemo\tdevice:a\\tb\tpower\t1774742400250\tPT0S\t1.5\tW\tmeasured\tx\\\\y
            1\t1\tdemo\tdevice:c\tpower\t1774742400250\tPT0S\t-2.0\tW\tmeasured\ts
            2\t2\tdemo\tdevice:a\\tb\tpower\t1774742400250\tPT0S\t3.0\tW\testimated\tline\\nbreak

            """)
    }

    /// Rows written into the buffer's memory agree with rows put together as Swift strings, for text
    /// with every escape in every field, long text (chunks of 256 KiB), and doubles of every size.
    @Test func rowsAgreeWithTheSameRowsMadeAsStrings() async {
        await onOwnThread {
            var random = SystemRandomNumberGenerator()
            let alphabet = Array("ab\\\t\n\r é€😀:0".unicodeScalars)
            func text() -> String {
                let length = Int.random(in: 0...(Int.random(in: 0...20, using: &random) == 0 ? 3000 : 12), using: &random)
                return String(String.UnicodeScalarView((0..<length).map { _ in alphabet.randomElement(using: &random)! }))
            }
            let doubles: [Double] = [0, -0.0, 1e-300, -1.7976931348623157e308, 5e-324, 0.1, 123456.789, .nan, .infinity, -.infinity]
            let readings = (0..<3000).map { _ in
                Reading(
                    tenant: text(), series: text(), quantity: text(), ts: Date(timeIntervalSince1970: Double(Int.random(in: 0...4_000_000_000, using: &random)) / 1000),
                    resolution: text(), value: Bool.random(using: &random) ? doubles.randomElement(using: &random)! : Double.random(in: -1e9...1e9, using: &random),
                    unit: text(), quality: [.measured, .estimated, .forecast].randomElement(using: &random)!, source: text())
            }
            func escaped(_ s: String) -> String {
                s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\t", with: "\\t")
                    .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
            }
            var rounds: [String: Int] = [:]
            var expected = ""
            for (i, r) in readings.enumerated() {
                let ms = r.ts.epochMilliseconds
                let key = "\(r.tenant)\u{0}\(r.series)\u{0}\(r.quantity)\u{0}\(ms)"
                rounds[key, default: 0] += 1
                let value = r.value.isNaN ? "NaN" : r.value.isInfinite ? (r.value > 0 ? "Infinity" : "-Infinity") : r.value.description
                expected += [String(i), String(rounds[key]!), escaped(r.tenant), escaped(r.series), escaped(r.quantity), String(ms), escaped(r.resolution),
                    value, escaped(r.unit), r.quality.rawValue, escaped(r.source)].joined(separator: "\t") + "\n"
            }
            let (chunks, _) = PostgresStore.copyText(readings)
            var text = ""
            for var chunk in chunks { text += chunk.readString(length: chunk.readableBytes) ?? "" }
            #expect(chunks.count > 1)
            // Row by row (COPY text has no raw newline inside a row), the first that differs told alone.
            let rows = text.split(separator: "\n", omittingEmptySubsequences: false), wanted = expected.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(rows.count == wanted.count)
            if let i = rows.indices.first(where: { $0 < wanted.count && rows[$0] != wanted[$0] }) { #expect(rows[i] == wanted[i], "row \(i)") }
        }
    }
}
