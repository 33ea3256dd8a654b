import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP/1.1 over a plain socket, for requests URLSession will not make: any `Host`, `Origin` or
/// other header, a body sent whole before the answer is read (as Python's urllib does: no
/// `Expect: 100-continue`), or a connection left open and idle. Every read and write waits at most
/// `timeout`; a wait that runs out is an error, never a hang. The waits happen on threads of their
/// own, never on the concurrency pool that an in-process hub answers on.
public final class RawHTTPConnection: @unchecked Sendable {
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    let fd: Int32

    /// `receiveBuffer`: a small socket buffer, to stand for a client that reads slowly.
    public init(port: Int, timeout: Duration = .seconds(5), receiveBuffer: Int? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        if var size = receiveBuffer.map(Int32.init) { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var wait = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw Failure(description: "connect: \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    /// Runs blocking socket work on a thread of its own.
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    /// Writes all of `bytes`; throws when the peer stops reading for longer than the timeout.
    public func write(_ bytes: [UInt8]) async throws {
        try await Self.blocking { try self.writeNow(bytes) }
    }

    func writeNow(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: errno == EAGAIN ? "the server stopped reading (\(sent) of \(bytes.count) bytes sent)" : "send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// Reads one answer (headers, then a body of `Content-Length` bytes, or up to the close).
    public func readAnswer() async throws -> Answer {
        try await Self.blocking { try self.readAnswerNow() }
    }

    func readAnswerNow() throws -> Answer {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        func more() throws -> Bool {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { return try more() }
                throw Failure(description: errno == EAGAIN ? "no answer within the timeout" : "recv: \(String(cString: strerror(errno)))")
            }
            data += buffer[0..<n]
            return n > 0
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var end: Int?
        while end == nil {
            guard try more() else { throw Failure(description: "the connection closed before an answer (\(data.count) bytes)") }
            end = data.indices.dropLast(3).first { Array(data[$0..<($0 + 4)]) == separator }
        }
        let head = String(decoding: data[..<end!], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(data[(end! + 4)...])
        if let length = headers["content-length"].flatMap(Int.init) {
            while body.count < length {
                let before = data.count
                guard try more() else { break }
                body += data[before...]
            }
        }
        return Answer(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }

    /// Whether the server closed the connection (a read returns end of file) within the timeout.
    public func closedByServer() async -> Bool {
        (try? await Self.blocking { self.closedNow() }) ?? false
    }

    func closedNow() -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            if n == 0 { return true }
            if n < 0 && errno == EINTR { continue }
            return n < 0 && errno == ECONNRESET
        }
    }

    /// One request: `method path`, `headers` (a `Host` of 127.0.0.1 unless given), and `body`.
    public static func request(
        port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = [], timeout: Duration = .seconds(5)
    ) async throws -> Answer {
        let connection = try RawHTTPConnection(port: port, timeout: timeout)
        var all = ["Host": "127.0.0.1:\(port)", "Connection": "close"].merging(headers) { $1 }
        if !body.isEmpty || method != "GET" { all["Content-Length"] = String(body.count) }
        let head = "\(method) \(path) HTTP/1.1\r\n" + all.map { "\($0): \($1)\r\n" }.joined() + "\r\n"
        try await connection.write(Array(head.utf8) + body)
        return try await connection.readAnswer()
    }
}
