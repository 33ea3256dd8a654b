import CZlib
import EnchufeCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The hub's own journal for messages it must acknowledge before its flow has committed them (MQTT
/// QoS 1/2: the client acknowledges a burst of messages once its records are written).
///
/// Records are appended to segment files with `write(2)` before their acknowledgement leaves (a burst
/// of them staged and written at once, `stage` then `flush`), so a message the broker considers
/// delivered is at least in the operating system's page cache: it survives the hub
/// being killed (`kill -9`, a crash). With `sync: .always` every write is also `fsync`ed before it
/// returns, and it survives a power loss too; with `.interval` the journal is `fsync`ed when a
/// record arrives more than that interval after the last sync, so a power loss can lose the records of
/// the last interval. Once everything derived from a record is committed by the sinks, `commit(seq)`
/// records it; the journal keeps the highest sequence below which everything is committed (the
/// watermark) and deletes segments that lie entirely below it. On open, every record above the
/// watermark is handed back for replay (some may have been committed already: the sinks' upserts
/// make the replay harmless). A record torn by a crash at the end of the last segment is cut off.
public final class MessageJournal: Sendable {
    public enum Sync: Sendable, Equatable {
        case always
        case interval(Duration)
        case never
    }

    public struct Record: Sendable, Equatable {
        public var seq: UInt64
        public var data: [UInt8]
    }

    public let directory: URL
    let sync: Sync
    let segmentBytes: Int

    private struct State {
        var fd: Int32 = -1
        var segmentSize = 0
        var nextSeq: UInt64 = 1
        /// Appended, not yet committed.
        var pending = PendingSequences(after: 0)
        var watermark: UInt64 = 0
        var savedWatermark: UInt64 = 0
        var lastSync = ContinuousClock.now
        var segments: [(start: UInt64, path: String)] = []
        /// The `committed` file, kept open; the watermark is written in its two slots in turn.
        var watermarkFD: Int32 = -1
        var watermarkSaves: UInt64 = 0
        /// Records staged and not written yet (kept, so staging allocates nothing once it has grown).
        var staged: [UInt8] = []
    }

    private let state = Mutex(State())
    /// The folder's `lock` file, held while the journal is open.
    private let folderLock: ExclusiveFileLock

    /// Opens (or creates) the journal folder; `recover()` then reads what is left in it.
    public init(directory: URL, sync: Sync = .interval(.milliseconds(100)), segmentBytes: Int = 16 << 20) throws {
        self.directory = directory
        self.sync = sync
        self.segmentBytes = segmentBytes
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // One journal per folder: two writing the same segments would corrupt them.
        do {
            folderLock = try ExclusiveFileLock(path: directory.appendingPathComponent("lock").path)
        } catch {
            switch error {
            case .cannotOpen(let reason): throw MQTTError(reason)
            case .heldByAnotherProcess:
                throw MQTTError(
                    "the journal \(directory.path) is in use by another process (another hub in the same folder?): give each instance its own working folder or `journal`")
            case .heldInThisProcess:
                throw MQTTError("the journal \(directory.path) is in use by another node of this hub: give each `mqtt.in` its own `journal`")
            }
        }
    }

    /// Reads the journal after a start: the records above the watermark, in order. Call once, before
    /// the first `append`.
    public func recover() throws -> [Record] {
        try state.withLock { s in
            (s.watermark, s.watermarkSaves) = Self.readWatermark(directory.appendingPathComponent("committed").path)
            s.savedWatermark = s.watermark
            let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".log") }
            s.segments = names.compactMap { name in UInt64(name.dropLast(4)).map { ($0, directory.appendingPathComponent(name).path) } }
                .sorted { $0.start < $1.start }
            var records: [Record] = []
            var maxSeq = s.watermark
            for (i, segment) in s.segments.enumerated() {
                let (read, validBytes, total) = try Self.read(segment.path)
                if validBytes < total {
                    // A torn record (the hub died while writing it): only the last segment can have one.
                    guard i == s.segments.count - 1 else {
                        throw MQTTError("journal segment \(segment.path) is damaged at byte \(validBytes) (not its end)")
                    }
                    guard truncate(segment.path, off_t(validBytes)) == 0 else {
                        throw MQTTError("cannot cut the torn end of \(segment.path): \(String(cString: strerror(errno)))")
                    }
                }
                for r in read {
                    maxSeq = max(maxSeq, r.seq)
                    if r.seq > s.watermark { records.append(r) }
                }
            }
            s.nextSeq = maxSeq + 1
            s.pending = PendingSequences(after: s.watermark)
            for r in records.sorted(by: { $0.seq < $1.seq }) { s.pending.add(r.seq) }
            try openSegment(&s)
            return records
        }
    }

    /// Appends a record (durable as `sync` says before it returns) and returns its sequence number.
    public func append(_ data: [UInt8]) throws -> UInt64 {
        try append { $0 += data }
    }

    /// Appends the record that `encode` writes at the end of the buffer it is given (without an array
    /// of its own), with one `write(2)`; returns its sequence number.
    public func append(encoding encode: (inout [UInt8]) -> Void) throws -> UInt64 {
        try state.withLock { s in
            let seq = try stage(&s, encode)
            try flush(&s)
            return seq
        }
    }

    /// Adds a record to the ones waiting for `flush()`, which writes them all with one `write(2)`:
    /// a burst of messages costs one system call, not one each. The record is not durable, and must
    /// not be acknowledged, before that `flush()` returns. Returns its sequence number.
    public func stage(encoding encode: (inout [UInt8]) -> Void) throws -> UInt64 {
        try state.withLock { s in try stage(&s, encode) }
    }

    /// Writes the staged records (one `write(2)`), fsyncing as `sync` says.
    public func flush() throws {
        try state.withLock { s in try flush(&s) }
    }

    private func stage(_ s: inout State, _ encode: (inout [UInt8]) -> Void) throws -> UInt64 {
        if s.fd < 0 || s.segmentSize >= segmentBytes {
            // What is staged belongs to the segment being closed.
            try flush(&s)
            try openSegment(&s)
        }
        let seq = s.nextSeq
        let start = s.staged.count
        s.staged.append(contentsOf: repeatElement(0, count: 16))
        encode(&s.staged)
        let length = s.staged.count - start - 16
        s.staged.withUnsafeMutableBytes { frame in
            frame.storeBytes(of: UInt32(length).littleEndian, toByteOffset: start, as: UInt32.self)
            frame.storeBytes(of: seq.littleEndian, toByteOffset: start + 8, as: UInt64.self)
            // The sequence number lies just before the data, as the checksum takes them: one call.
            let crc = CRC32.checksum(UnsafeRawBufferPointer(rebasing: frame[(start + 8)...]))
            frame.storeBytes(of: crc.littleEndian, toByteOffset: start + 4, as: UInt32.self)
        }
        s.segmentSize += length + 16
        s.nextSeq += 1
        s.pending.add(seq)
        return seq
    }

    private func flush(_ s: inout State) throws {
        guard !s.staged.isEmpty else { return }
        defer { s.staged.removeAll(keepingCapacity: true) }
        try Self.writeAll(s.fd, s.staged)
        switch sync {
        case .always:
            fsync(s.fd)
        case .interval(let interval):
            if ContinuousClock.now - s.lastSync >= interval {
                fsync(s.fd)
                s.lastSync = .now
            }
        case .never:
            break
        }
    }

    /// Everything derived from record `seq` is committed: it will not be replayed after a restart
    /// (once the watermark passes it and is saved).
    public func commit(_ seq: UInt64) {
        state.withLock { s in
            guard s.pending.remove(seq) else { return }
            let newWatermark = (s.pending.first ?? s.nextSeq) - 1
            guard newWatermark > s.watermark else { return }
            s.watermark = newWatermark
            // Saving the watermark is cheap but not free: every 1,000 records, or when idle.
            if s.watermark - s.savedWatermark >= 1000 || s.pending.isEmpty { saveWatermark(&s) }
        }
    }

    /// Records appended and not committed yet.
    public var pendingCount: Int { state.withLock { $0.pending.count } }

    /// The sequences appended and not committed, kept in order, so that committing one and finding
    /// the first still pending cost O(1) on average (a `Set` and its `min()` cost O(pending) per
    /// commit: up to 10,000 steps a message at `max_pending`).
    struct PendingSequences {
        /// The sequence at `done[head]`.
        private var start: UInt64
        /// For every sequence from `start` on: committed (or never pending) or not.
        private var done: [Bool] = []
        private var head = 0
        private(set) var count = 0
        var isEmpty: Bool { count == 0 }

        init(after watermark: UInt64) { start = watermark + 1 }

        /// The first sequence still pending.
        var first: UInt64? { head < done.count ? start : nil }

        /// Adds a sequence above every one added before (those skipped are not pending).
        mutating func add(_ seq: UInt64) {
            guard seq >= start + UInt64(done.count - head) else { return }
            while start + UInt64(done.count - head) < seq { done.append(true) }
            done.append(false)
            count += 1
            advance()
        }

        /// Marks a pending sequence committed; false if it was not pending.
        mutating func remove(_ seq: UInt64) -> Bool {
            guard seq >= start, seq - start < UInt64(done.count - head) else { return false }
            let i = head + Int(seq - start)
            guard !done[i] else { return false }
            done[i] = true
            count -= 1
            advance()
            return true
        }

        private mutating func advance() {
            while head < done.count, done[head] {
                head += 1
                start += 1
            }
            if head > 4096, head * 2 > done.count {
                done.removeFirst(head)
                head = 0
            }
        }
    }

    /// Saves the watermark and closes the current segment.
    public func close() {
        state.withLock { s in
            saveWatermark(&s)
            if s.fd >= 0 {
                try? flush(&s)
                fsync(s.fd)
                Glibc.close(s.fd)
                s.fd = -1
            }
            if s.watermarkFD >= 0 {
                Glibc.close(s.watermarkFD)
                s.watermarkFD = -1
            }
        }
        folderLock.release()
    }

    deinit { close() }

    // MARK: Files

    private func openSegment(_ s: inout State) throws {
        if s.fd >= 0 {
            fsync(s.fd)
            Glibc.close(s.fd)
        }
        let path = directory.appendingPathComponent(String(format: "%020llu.log", s.nextSeq)).path
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MQTTError("cannot open the journal segment \(path): \(String(cString: strerror(errno)))") }
        s.fd = fd
        s.segmentSize = 0
        if !s.segments.contains(where: { $0.path == path }) { s.segments.append((s.nextSeq, path)) }
        syncDirectory()
    }

    /// Saves the watermark in the `committed` file: in one of two 16-byte slots in turn (the value
    /// and its CRC), overwritten in place with `pwrite(2)`. A write torn by a crash leaves the other
    /// slot, one save older, which only means replaying a little more. (It used to be a text file
    /// written aside and renamed over, which costs a new inode at every save: `ext4_create` was a
    /// visible share of the hub's time draining a backlog.)
    private func saveWatermark(_ s: inout State) {
        guard s.watermark != s.savedWatermark else { return }
        if s.watermarkFD < 0 {
            s.watermarkFD = open(directory.appendingPathComponent("committed").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard s.watermarkFD >= 0 else { return }
        }
        var slot = [UInt8](repeating: 0, count: 16)
        slot.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: s.watermark.littleEndian, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: UInt64(CRC32.checksum([], seed: s.watermark)).littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        let offset = off_t(16 * (s.watermarkSaves % 2))
        guard pwrite(s.watermarkFD, slot, 16, offset) == 16 else { return }
        s.watermarkSaves += 1
        s.savedWatermark = s.watermark
        // Segments whose every record is at or below the watermark (the next segment starts above it).
        while s.segments.count > 1, s.segments[1].start <= s.watermark + 1 {
            unlink(s.segments.removeFirst().path)
        }
    }

    /// The watermark saved in `path` — the highest valid slot, or the text an older hub wrote; 0 if
    /// there is none — and the slot to write next (the other one).
    static func readWatermark(_ path: String) -> (UInt64, next: UInt64) {
        guard let bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else { return (0, 0) }
        var best: (value: UInt64, slot: UInt64)?
        for slot in 0..<min(2, bytes.count / 16) {
            let value = get(UInt64.self, bytes, 16 * slot)
            if get(UInt64.self, bytes, 16 * slot + 8) == UInt64(CRC32.checksum([], seed: value)), value >= best?.value ?? 0 {
                best = (value, UInt64(slot))
            }
        }
        if let best { return (best.value, best.slot + 1) }
        return (String(validating: bytes, as: UTF8.self).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0, 0)
    }

    private func syncDirectory() {
        let fd = open(directory.path, O_RDONLY | O_DIRECTORY)
        if fd >= 0 {
            fsync(fd)
            Glibc.close(fd)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw MQTTError("cannot write the journal: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// The valid records of a segment, the length of its valid prefix and its total length.
    static func read(_ path: String) throws -> ([Record], Int, Int) {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var records: [Record] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(get(UInt32.self, bytes, offset))
            let crc = get(UInt32.self, bytes, offset + 4)
            let seq = get(UInt64.self, bytes, offset + 8)
            guard offset + 16 + length <= bytes.count else { break }
            // Checked as written: the sequence number and the data, as they lie in the frame.
            guard bytes.withUnsafeBytes({ CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[(offset + 8)..<(offset + 16 + length)])) }) == crc else { break }
            records.append(Record(seq: seq, data: Array(bytes[(offset + 16)..<(offset + 16 + length)])))
            offset += 16 + length
        }
        return (records, offset, bytes.count)
    }

    static func get<I: FixedWidthInteger>(_: I.Type, _ bytes: [UInt8], _ offset: Int) -> I {
        var value: I = 0
        for i in 0..<MemoryLayout<I>.size { value |= I(bytes[offset + i]) << (8 * i) }
        return value
    }
}

/// CRC-32 (ISO-HDLC, as zlib and gzip compute it) of a record, its sequence number first, so a record
/// copied to the wrong place fails too: zlib's `crc32`, which reads several bytes a step where a
/// table-per-byte loop read one (that loop was 2 % of a draining hub's samples). Journals written by
/// the earlier loop read the same.
enum CRC32 {
    static func checksum(_ data: [UInt8], seed: UInt64) -> UInt32 {
        data.withUnsafeBytes { checksum($0, seed: seed) }
    }

    static func checksum(_ data: UnsafeRawBufferPointer, seed: UInt64) -> UInt32 {
        let crc = withUnsafeBytes(of: seed.littleEndian) { checksum($0) }
        guard let base = data.baseAddress, data.count > 0 else { return crc }
        return UInt32(truncatingIfNeeded: crc32(uLong(crc), base.assumingMemoryBound(to: Bytef.self), uInt(data.count)))
    }

    /// The checksum of bytes that already begin with the little-endian sequence number.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(truncatingIfNeeded: crc32(0, bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
    }
}
