import Foundation

/// One running `enchufe run` of a deployment, as its heartbeats in the store say.
public struct InstanceRecord: Sendable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int
    /// The address it serves HTTP on.
    public var http: String
    public var startedAt: Date
    public var heartbeatAt: Date

    public init(id: String, host: String, pid: Int, http: String, startedAt: Date, heartbeatAt: Date) {
        self.id = id
        self.host = host
        self.pid = pid
        self.http = http
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// The right of one instance to run one singleton source (a schedule, a pull connector) for a
/// while. `fence` grows each time the lease changes hands: a write fenced with an older number is
/// refused, so an instance that lost its lease (paused, cut off) commits nothing afterwards.
public struct Lease: Sendable, Hashable {
    public var name: String
    public var holder: String
    public var fence: Int64
    public var expiresAt: Date

    public init(name: String, holder: String, fence: Int64, expiresAt: Date) {
        self.name = name
        self.holder = holder
        self.fence = fence
        self.expiresAt = expiresAt
    }

    /// The lease the current task's checkpoint writes are fenced with (set by the engine around a
    /// singleton source).
    @TaskLocal public static var current: Lease?
}

/// A fenced write refused: the lease it was made under is no longer held.
public struct LeaseLost: Error, CustomStringConvertible {
    public var lease: String
    public var description: String { "the lease '\(lease)' is held by another instance now: nothing was written" }
    public init(lease: String) { self.lease = lease }
}
