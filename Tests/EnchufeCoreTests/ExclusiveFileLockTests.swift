import Foundation
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
        #expect(throws: ExclusiveFileLock.Failure.self) { try ExclusiveFileLock(path: "/nonexistent-folder-\(UUID().uuidString)/lock") }
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
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fd, 3)
        let argv = (["/bin/sleep", "600"] as [String]).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sleep", &actions, nil, argv, environ)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        return pid
    }

    static func end(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }
}
