import Foundation
import Testing

@testable import MQTT

@Suite struct MessageJournalTests {
    func directory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-journal-\(UUID().uuidString)")
    }

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The records' CRC-32 (now zlib's) is the one journals were written with: the check value of
    /// CRC-32/ISO-HDLC, and a bit-by-bit CRC of the sequence number's bytes and the record.
    @Test func theRecordChecksumIsCRC32OfTheSequenceNumberAndTheRecord() {
        func bitwise(_ bytes: [UInt8]) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return ~crc
        }
        #expect(bitwise(bytes("123456789")) == 0xCBF4_3926)
        var random = SystemRandomNumberGenerator()
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099] {
            let record = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let seq = UInt64.random(in: 0 ... .max, using: &random)
            let prefix = withUnsafeBytes(of: seq.littleEndian) { Array($0) }
            #expect(CRC32.checksum(record, seed: seq) == bitwise(prefix + record), "\(length) bytes")
            // The writer's form: the sequence number already in front of the record.
            #expect((prefix + record).withUnsafeBytes { CRC32.checksum($0) } == bitwise(prefix + record), "\(length) bytes, in place")
        }
    }

    @Test func whatIsNotCommittedIsReplayedAfterAReopenAndWhatIsCommittedIsNot() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var journal = try MessageJournal(directory: dir)
        #expect(try journal.recover().isEmpty)
        let seqs = try ["a", "b", "c"].map { try journal.append(bytes($0)) }
        #expect(seqs == [1, 2, 3])
        journal.commit(2)  // out of order: 1 is still pending, so nothing is below the watermark yet
        journal.close()

        journal = try MessageJournal(directory: dir)
        #expect(try journal.recover().map(\.data) == [bytes("a"), bytes("b"), bytes("c")])
        journal.commit(1)
        journal.commit(2)
        journal.close()

        journal = try MessageJournal(directory: dir)
        let left = try journal.recover()
        #expect(left == [MessageJournal.Record(seq: 3, data: bytes("c"))])
        #expect(try journal.append(bytes("d")) == 4, "sequence numbers go on after a reopen")
        journal.close()
    }

    /// Records are framed in one buffer the journal keeps: a long record and a short one after it, and
    /// a message encoded straight into the frame, read back as they were written.
    @Test func recordsOfAnyLengthAreReadBackAsWrittenThoughTheFrameIsReused() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var journal = try MessageJournal(directory: dir)
        _ = try journal.recover()
        let long = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let message = MQTTMessage(topic: "site/ñandú/power", payload: bytes(#"{"w": 5}"#), qos: 1, retain: true)
        _ = try journal.append(long)
        _ = try journal.append(bytes("short"))
        _ = try journal.append { JournaledMessage.encode(message, into: &$0) }
        _ = try journal.append([])
        journal.close()
        journal = try MessageJournal(directory: dir)
        let records = try journal.recover()
        #expect(records.map(\.data) == [long, bytes("short"), JournaledMessage.encode(message), []])
        let decoded = JournaledMessage.decode(records[2].data)
        #expect(decoded?.topic == message.topic && decoded?.payload == message.payload && decoded?.qos == 1 && decoded?.retain == true)
        journal.close()
    }

    /// The pending sequences in order give what a set and its minimum gave, commits in any order.
    @Test func pendingSequencesAgreeWithASet() {
        var random = SystemRandomNumberGenerator()
        var pending = MessageJournal.PendingSequences(after: 41)
        var model = Set<UInt64>()
        var next: UInt64 = 42
        for round in 0..<20_000 {
            if model.count < 500 && (model.isEmpty || Bool.random(using: &random)) {
                next += UInt64.random(in: 1...2, using: &random)  // sequences may skip (unreadable records)
                pending.add(next)
                model.insert(next)
            } else {
                let seq = Bool.random(using: &random) ? model.min()! : model.randomElement(using: &random)!
                let removed = pending.remove(seq), again = pending.remove(seq)
                model.remove(seq)
                #expect(removed && !again, "committed once; a second commit of \(seq) changes nothing")
            }
            #expect(pending.first == model.min(), "round \(round)")
            #expect(pending.count == model.count)
        }
        let below = pending.remove(1), beyond = pending.remove(next + 10)
        #expect(!below && !beyond, "below the watermark, never appended")
    }

    @Test func aJournalFolderIsOpenInOneProcessAtATime() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try MessageJournal(directory: dir)
        _ = try first.recover()
        #expect(throws: MQTTError.self) { try MessageJournal(directory: dir) }
        do {
            _ = try MessageJournal(directory: dir)
        } catch {
            #expect("\(error)".contains("\(dir.path) is in use by another node of this hub"), "\(error)")
        }
        first.close()
        let second = try MessageJournal(directory: dir)
        #expect(try second.recover().isEmpty, "free again once the first is closed")
        second.close()
    }

    @Test func aRecordTornByACrashIsCutOffAndTheRestIsKept() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let journal = try MessageJournal(directory: dir)
        _ = try journal.recover()
        _ = try journal.append(bytes("first"))
        _ = try journal.append(bytes("second"))
        journal.close()
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasSuffix(".log") })
        let path = dir.appendingPathComponent(segment).path
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data([9, 0, 0, 0, 1, 2, 3, 4, 3, 0, 0]))  // a frame header cut short
        try handle.close()
        let sizeBefore = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int

        let reopened = try MessageJournal(directory: dir)
        #expect(try reopened.recover().map(\.data) == [bytes("first"), bytes("second")])
        let sizeAfter = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(sizeAfter == (sizeBefore ?? 0) - 11)
        #expect(try reopened.append(bytes("third")) == 3)
        reopened.close()
        #expect(try MessageJournal(directory: dir).recover().map(\.data) == [bytes("first"), bytes("second"), bytes("third")])
    }

    @Test func aCorruptRecordStopsTheReadOfItsSegmentAndIsReported() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let journal = try MessageJournal(directory: dir, segmentBytes: 40)
        _ = try journal.recover()
        for text in ["one", "two", "three", "four"] { _ = try journal.append(bytes(text)) }
        journal.close()
        let first = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".log") }.sorted().first)
        let path = dir.appendingPathComponent(first).path
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count - 1] ^= 0xFF  // flip a bit of the last record of an older segment
        try data.write(to: URL(fileURLWithPath: path))
        #expect(throws: MQTTError.self) { try MessageJournal(directory: dir).recover() }
    }

    @Test func segmentsBelowTheWatermarkAreDeleted() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let journal = try MessageJournal(directory: dir, segmentBytes: 64)
        _ = try journal.recover()
        let seqs = try (0..<20).map { try journal.append(bytes("message \($0)")) }
        let segmentsBefore = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".log") }.count
        for seq in seqs { journal.commit(seq) }
        let segmentsAfter = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".log") }.count
        #expect(segmentsBefore >= 5)
        #expect(segmentsAfter == 1)
        #expect(journal.pendingCount == 0)
        journal.close()
        #expect(try MessageJournal(directory: dir).recover().isEmpty)
    }
}

@Suite struct JournalWatermarkTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The watermark is kept in two slots written in turn; a torn slot leaves the other one, and the
    /// text an older hub wrote is still read.
    @Test func theWatermarkSurvivesATornSlotAndAnOlderHubsTextFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let committed = dir.appendingPathComponent("committed")
        let journal = try MessageJournal(directory: dir)
        _ = try journal.recover()
        let seqs = try (1...8).map { try journal.append(bytes("m\($0)")) }
        journal.close()

        // An older hub's text file.
        try "5\n".write(to: committed, atomically: false, encoding: .utf8)
        var reopened = try MessageJournal(directory: dir)
        #expect(try reopened.recover().map(\.seq) == Array(seqs[5...]))
        reopened.commit(seqs[5])
        reopened.close()  // saves 6 in slot 0
        reopened = try MessageJournal(directory: dir)
        #expect(try reopened.recover().map(\.seq) == Array(seqs[6...]))
        reopened.commit(seqs[6])
        reopened.close()  // saves 7 in slot 1
        #expect(try Data(contentsOf: committed).count == 32)

        // The newer slot torn: the older one (6) holds.
        var file = try Data(contentsOf: committed)
        file[16 + 3] ^= 0x5A
        try file.write(to: committed)
        reopened = try MessageJournal(directory: dir)
        #expect(try reopened.recover().map(\.seq) == Array(seqs[6...]), "record 7 is replayed, nothing below it")
        reopened.commit(seqs[6])
        reopened.commit(seqs[7])
        reopened.close()  // saves 8 in slot 1, the one that was torn
        #expect(try MessageJournal(directory: dir).recover().isEmpty)
    }
}
