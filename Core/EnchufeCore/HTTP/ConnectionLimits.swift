#if canImport(Glibc)
    import Glibc
#endif

/// How many connections the HTTP server keeps open and how long an idle one may stay. An outside
/// test opened 1,100 idle sockets: with systemd's soft limit of 1,024 descriptors the hub could
/// no longer answer `/healthz`, open its store or list its flow folder. Now the soft limit is raised
/// to the hard one at start where allowed, the server stops accepting (the rest wait in the
/// kernel's backlog, holding no descriptor of ours) at three quarters of it, leaving the rest for
/// the store, the brokers, files and journals, and a connection that completes no request part
/// (a request line and headers, a piece of a body) within `idleTimeout` is closed — idle keep-alive
/// connections and requests whose headers never end alike.
public struct ConnectionLimits: Sendable {
    public var connections: Int
    public var idleTimeout: Duration

    public init(connections: Int? = nil, idleTimeout: Duration = .seconds(30)) {
        self.connections = connections ?? Self.connections(descriptors: Self.descriptorLimit())
        self.idleTimeout = idleTimeout
    }

    /// Connections to keep open when the process may hold `descriptors` files.
    static func connections(descriptors: Int) -> Int {
        max(16, min(10_000, descriptors * 3 / 4 - 64))
    }

    /// The process's soft descriptor limit, raised to the hard limit first where that is allowed.
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = min(limit.rlim_max, 1 << 20)
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return descriptorLimit()
    }

    /// The process's soft descriptor limit now.
    static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(min(limit.rlim_cur, 1 << 20))
    }
}
