import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reading a pipe to its end with `read(2)`, going on when a signal interrupts it (`EINTR`: a
/// child process stopping or ending sends SIGCHLD), where Foundation's `availableData` and
/// `readDataToEndOfFile` stop the process instead.
public enum PipeReading {
    /// Hands each chunk read from `handle` to `body` until the end (or an error).
    public static func chunks(_ handle: FileHandle, _ body: ([UInt8]) -> Void) {
        let fd = handle.fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            body(Array(buffer[..<n]))
        }
    }

    /// Everything `handle` gives until its end.
    public static func all(_ handle: FileHandle) -> Data {
        var data = Data()
        chunks(handle) { data.append(contentsOf: $0) }
        return data
    }
}
