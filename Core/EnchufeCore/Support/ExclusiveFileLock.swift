import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a file: one holder among the processes on the machine, and one within
/// this process. The system drops it when the process ends, however it ends.
///
/// It is a POSIX record lock (`fcntl(F_SETLK)`), not `flock`: a child process does not inherit a
/// record lock. An `flock` belongs to the open file, which a child started by `fork` shares until
/// its `exec` closes it; a lock released while some thread of the hub was starting a child
/// (a plugin, or in the tests a server) stayed held by the child for that while, and the next
/// holder was refused as "in use by another process". A record lock is the process's own, so
/// holders within one process are kept apart here, by the file's path.
public final class ExclusiveFileLock: Sendable {
    public enum Failure: Error, Equatable {
        /// The file could not be opened.
        case cannotOpen(String)
        /// Another process holds the lock; `holder` is what it wrote into the file, if anything.
        case heldByAnotherProcess(holder: String?)
        /// This process holds it already, through another `ExclusiveFileLock`.
        case heldInThisProcess
    }

    private let fd: Mutex<Int32>
    /// The file's entry in `held`, made when it was locked: the folder may be gone by `release`.
    private let key: String

    /// The paths this process holds, made absolute and free of symbolic links in their folder.
    private static let held = Mutex<Set<String>>([])

    /// Opens (creating it) and locks `path`; throws at once when someone else holds it.
    public init(path: String) throws(Failure) {
        let key = Self.key(path)
        self.key = key
        let reserved = Self.held.withLock { $0.insert(key).inserted }
        guard reserved else { throw .heldInThisProcess }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            Self.held.withLock { _ = $0.remove(key) }
            throw .cannotOpen("cannot open \(path): \(reason)")
        }
        var region = flock()
        region.l_type = Int16(F_WRLCK)
        region.l_whence = Int16(SEEK_SET)
        guard fcntl(fd, F_SETLK, &region) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = read(fd, &buffer, buffer.count)
            // Safe to close: this process holds no lock on the file (`held` said so).
            close(fd)
            Self.held.withLock { _ = $0.remove(key) }
            let text = n > 0 ? String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            throw .heldByAnotherProcess(holder: text.isEmpty ? nil : text)
        }
        self.fd = Mutex(fd)
    }

    deinit { release() }

    /// The open lock file (-1 once released).
    var fileDescriptor: Int32 { fd.withLock { $0 } }

    /// Replaces the file's content with `text` (who holds it, for the next one to be told).
    public func write(_ text: String) {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            ftruncate(fd, 0)
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBufferPointer { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
    }

    /// Gives the lock up (idempotent).
    public func release() {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            // Closed before the path is free in this process: a holder that came between would
            // share this process's lock.
            close(fd)
            fd = -1
            Self.held.withLock { _ = $0.remove(key) }
        }
    }

    private static func key(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let real = realpath(folder, nil).map { p in
            defer { free(p) }
            return String(cString: p)
        }
        return (real ?? folder) + "/" + url.lastPathComponent
    }
}
