import Foundation
import TestSupport
import Testing

@testable import EnchufeCore

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ExclusiveFileLockTests {
    func path() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-lock-\(UUID().uuidString)").path
    }

    @Test func aSecondHolderInThisProcessIsRefusedUntilTheFirstReleases() throws {
        let file = path()
        defer { unlink(file) }
        let first = try ExclusiveFileLock(path: file)
        #expect(throws: ExclusiveFileLock.Failure.heldInThisProcess) { try ExclusiveFileLock(path: file) }
        // The same file by another spelling of its folder.
        let other = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(".").appendingPathComponent(URL(fileURLWithPath: file).lastPathComponent).path
        #expect(throws: ExclusiveFileLock.Failure.heldInThisProcess) { try ExclusiveFileLock(path: other) }
        first.write("instance a\n")
        first.release()
        first.release()
        let second = try ExclusiveFileLock(path: file)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "instance a\n", "what the holder wrote stays for the next to read")
        second.release()
    }

    @Test func aFolderThatCannotHoldTheFileIsSaidSo() {
        let file = "/nonexistent-folder-\(UUID().uuidString)/lock"
        #expect(throws: ExclusiveFileLock.Failure.cannotOpen("cannot open \(file): No such file or directory")) { try ExclusiveFileLock(path: file) }
    }

    /// A lock taken through a symbolic link to its folder is the real file's; released after the
    /// link is gone, the real path is free again.
    @Test func aLockTakenThroughALinkIsReleasedWhenTheLinkIsGone() throws {
        let real = path(), link = path()
        try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real)
        defer {
            try? FileManager.default.removeItem(atPath: link)
            try? FileManager.default.removeItem(atPath: real)
        }
        let viaLink = try ExclusiveFileLock(path: link + "/lock")
        #expect(throws: ExclusiveFileLock.Failure.heldInThisProcess) { try ExclusiveFileLock(path: real + "/lock") }
        try FileManager.default.removeItem(atPath: link)
        viaLink.release()
        let direct = try ExclusiveFileLock(path: real + "/lock")
        direct.release()
    }

    /// What CI met: a lock released while a child process (started by another thread) still had
    /// the lock file open between its `fork` and its `exec`. An `flock` belongs to the open file,
    /// which the child shares: the next holder is refused until the child lets go. A record lock
    /// belongs to the process and is not inherited. The child here keeps the shared open file for
    /// as long as the test needs (it is the lock file, as its descriptor 3).
    @Test func aChildProcessThatSharesTheOpenFileDoesNotKeepTheLock() throws {
        let file = path()
        defer { unlink(file) }

        // The hazard, shown with flock.
        let flocked = open(file, O_RDWR | O_CREAT, 0o644)
        #expect(flock(flocked, LOCK_EX | LOCK_NB) == 0)
        let flockChild = try Self.spawnSharing(flocked)
        close(flocked)
        let again = open(file, O_RDWR)
        #expect(flock(again, LOCK_EX | LOCK_NB) != 0, "the child still holds the flock of the open file it shares")
        close(again)
        Self.end(flockChild)

        let lock = try ExclusiveFileLock(path: file)
        let child = try Self.spawnSharing(lock.fileDescriptor)
        defer { Self.end(child) }
        lock.release()
        let next = try ExclusiveFileLock(path: file)
        next.release()
    }

    /// Starts `sleep` with `fd` as its descriptor 3, the same open file as the caller's.
    static func spawnSharing(_ fd: Int32) throws -> pid_t {
        try Commands.spawn("/bin/sleep", ["600"], output: "/dev/null", sharing: fd)
    }

    static func end(_ pid: pid_t) {
        kill(pid, SIGKILL)
        Commands.wait(pid)
    }
}
