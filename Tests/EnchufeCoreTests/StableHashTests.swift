import Testing

@testable import EnchufeCore

/// FNV-1a 64 as published (Fowler, Noll, Vo: the test vectors of draft-eastlake-fnv): the Datadis
/// ledger's keys and the flows' fingerprints stored by earlier versions must keep their values.
@Suite struct StableHashTests {
    @Test(arguments: [
        ("", 0xcbf2_9ce4_8422_2325 as UInt64),
        ("a", 0xaf63_dc4c_8601_ec8c),
        ("foobar", 0x8594_4171_f739_67e8),
    ])
    func fnv1aGivesThePublishedValues(text: String, expected: UInt64) {
        #expect(StableHash.of(text.utf8) == expected)
    }

    /// Text added to a fingerprint ends with a separator: the parts' boundaries count.
    @Test func textIsAddedWithASeparator() {
        var ab = StableHash(), a = StableHash()
        ab.add("ab")
        ab.add("c")
        a.add("a")
        a.add("bc")
        #expect(ab.hex != a.hex)
        var one = StableHash()
        one.add("a")
        #expect(one.value == (0xaf63_dc4c_8601_ec8c as UInt64) ^ 0xff)
    }
}
