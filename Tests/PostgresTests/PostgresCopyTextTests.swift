import EnchufeCore
import Foundation
import NIOCore
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
}
