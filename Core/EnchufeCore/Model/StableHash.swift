/// FNV-1a, 64 bits: a fingerprint that stays the same across runs, processes and machines (Swift's
/// `Hasher` is seeded per process), for what the hub keeps or compares over time: a flow's text, a
/// Datadis account in its ledger's keys. Not for security.
public struct StableHash: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    /// FNV-1a of `bytes`, from the offset basis.
    public static func of(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash = StableHash()
        hash.add(bytes)
        return hash.value
    }

    public mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
    }

    /// Adds `text` and then a separator, so that ("ab", "c") and ("a", "bc") differ.
    public mutating func add(_ text: String) {
        add(text.utf8)
        value ^= 0xff
    }

    public var hex: String { String(value, radix: 16) }
}
