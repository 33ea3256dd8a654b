/// Turns out-of-order acknowledgements into in-order progress: a source registers positions in the
/// order it emits them and learns the newest position below which everything is committed.
/// (Pull connectors' checkpoints and the simulator's resume point use it.)
public struct AcknowledgementWindow<Position: Sendable>: Sendable {
    private var entries: [(id: UInt64, position: Position, done: Bool)] = []
    private var nextID: UInt64 = 0

    public init() {}

    /// Registers an emitted position; returns the ticket to acknowledge it with.
    public mutating func register(_ position: Position) -> UInt64 {
        defer { nextID += 1 }
        entries.append((nextID, position, false))
        return nextID
    }

    /// Marks a ticket committed; returns the newest position whose predecessors are all committed,
    /// if the acknowledgement moved it.
    public mutating func acknowledge(_ ticket: UInt64) -> Position? {
        guard let i = entries.firstIndex(where: { $0.id == ticket }) else { return nil }
        entries[i].done = true
        var advanced: Position?
        while let first = entries.first, first.done {
            advanced = first.position
            entries.removeFirst()
        }
        return advanced
    }

    public var outstanding: Int { entries.count }
}
