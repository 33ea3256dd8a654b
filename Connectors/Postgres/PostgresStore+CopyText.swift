import EnchufeCore
import Foundation
import NIOCore

/// A batch of readings as the text of `COPY readings_staging FROM STDIN`: rows made straight in
/// the buffers' memory.
extension PostgresStore {
    private static func increment(_ count: inout Int) -> Int {
        count += 1
        return count
    }

    /// The batch as COPY text rows (tab-separated, escaped), in chunks of about 256 KiB, and the number
    /// of rows in each round (one round unless a key repeats).
    static func copyText(_ readings: [Reading]) -> ([ByteBuffer], [Int]) {
        struct Key: Hashable {
            var tenant: String, series: String, quantity: String, ts: Int64
            // Hashes two of the four fields, the time and the series (what tells a batch's readings
            // apart; a batch rarely holds two tenants or quantities of one series at one time).
            func hash(into hasher: inout Hasher) {
                hasher.combine(ts)
                hasher.combine(series)
            }
        }
        var occurrences: [Key: Int] = [:]
        occurrences.reserveCapacity(readings.count)
        var roundSizes = [0]
        var chunks: [ByteBuffer] = []
        let chunkSize = 256 * 1024
        var buffer = ByteBufferAllocator().buffer(capacity: chunkSize + 4096)
        for (i, r) in readings.enumerated() {
            let ms = millis(r.ts)
            let key = Key(tenant: r.tenant, series: r.series, quantity: r.quantity, ts: ms)
            // Counted in place: one lookup (one hash) a reading.
            let round = Self.increment(&occurrences[key, default: 0])
            if round > roundSizes.count { roundSizes.append(0) }
            roundSizes[round - 1] += 1
            // Each field's most bytes: text escaped doubles, an integer's 20 digits and sign, a
            // double's shortest form (at most 24), and the eleven tabs and newline after them.
            let most = 2 * (r.tenant.utf8.count + r.series.utf8.count + r.quantity.utf8.count + r.resolution.utf8.count
                + r.unit.utf8.count + r.quality.rawValue.utf8.count + r.source.utf8.count) + 3 * 21 + 32 + 11
            buffer.writeCopyRow(most: most) { row in
                row.decimal(Int64(i), then: .tab)
                row.decimal(Int64(round), then: .tab)
                row.text(r.tenant, then: .tab)
                row.text(r.series, then: .tab)
                row.text(r.quantity, then: .tab)
                row.decimal(ms, then: .tab)
                row.text(r.resolution, then: .tab)
                row.double(r.value, then: .tab)
                row.text(r.unit, then: .tab)
                row.text(r.quality.rawValue, then: .tab)
                row.text(r.source, then: .newline)
            }
            if buffer.readableBytes >= chunkSize {
                chunks.append(buffer)
                buffer = ByteBufferAllocator().buffer(capacity: chunkSize + 4096)
            }
        }
        if buffer.readableBytes > 0 { chunks.append(buffer) }
        return (chunks, roundSizes)
    }
}

/// One COPY text row written straight into a buffer's memory: each field without the capacity and
/// uniqueness checks a `ByteBuffer` write makes (eleven fields and ten tabs a row; those checks were a
/// quarter of the rows' cost). The caller reserves the most the row can take; a row that would go
/// past it stops the process rather than write beyond the memory reserved.
struct CopyRow {
    /// What ends a field.
    enum End: UInt8 {
        case tab = 0x09, newline = 0x0A
    }

    private let out: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private(set) var count = 0

    init(_ out: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.out = out
        self.capacity = capacity
    }

    /// Room for `bytes` more, or a stop: the reserve was computed wrong.
    private func need(_ bytes: Int) {
        precondition(count + bytes <= capacity, "a COPY row longer than the \(capacity) bytes reserved for it")
    }

    private mutating func byte(_ byte: UInt8) {
        out[count] = byte
        count += 1
    }

    /// A text field: backslash, tab, newline and carriage return escaped (at most twice its bytes).
    mutating func text(_ text: String, then end: End? = nil) {
        var text = text
        text.withUTF8 { bytes in
            if !bytes.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) {
                need(bytes.count + 1)
                if let base = bytes.baseAddress { (out + count).update(from: base, count: bytes.count) }
                count += bytes.count
                return
            }
            need(2 * bytes.count + 1)
            for b in bytes {
                switch b {
                case UInt8(ascii: "\\"): byte(b); byte(b)
                case UInt8(ascii: "\t"): byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "t"))
                case UInt8(ascii: "\n"): byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "r"))
                default: byte(b)
                }
            }
        }
        if let end { byte(end.rawValue) }
    }

    /// An integer in decimal digits, as `String(value)` writes it (at most 20 bytes).
    mutating func decimal(_ value: Int64, then end: End? = nil) {
        need(21)
        if value < 0 { byte(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 1
        var scale: UInt64 = 10
        while digits < 20, magnitude >= scale {
            digits += 1
            scale = scale &* 10
        }
        for place in stride(from: count + digits - 1, through: count, by: -1) {
            out[place] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        }
        count += digits
        if let end { byte(end.rawValue) }
    }

    /// A double as PostgreSQL reads it: Swift's shortest form, `NaN`, `Infinity`, `-Infinity` (at most 24 bytes).
    mutating func double(_ value: Double, then end: End? = nil) {
        text(value.isNaN ? "NaN" : value.isInfinite ? (value > 0 ? "Infinity" : "-Infinity") : value.description, then: end)
    }
}

extension ByteBuffer {
    /// Writes a row of at most `most` bytes with `body`.
    mutating func writeCopyRow(most: Int, _ body: (inout CopyRow) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: most) { memory in
            var row = CopyRow(memory.baseAddress!.assumingMemoryBound(to: UInt8.self), capacity: memory.count)
            body(&row)
            return row.count
        }
    }

    /// An integer in decimal digits (ByteBuffer's own writeInteger writes binary), without making a
    /// `String` of it first.
    mutating func writeDecimal<I: BinaryInteger>(_ value: I) {
        guard let wide = Int64(exactly: value) else {
            writeString(String(value))
            return
        }
        writeCopyRow(most: 21) { $0.decimal(wide) }
    }
}
