import CLua
import Glibc

/// Lua 5.4's string patterns (reference manual §6.4.1), matched here rather than by the string
/// library's own matcher, which backtracks in C where no hook can reach it: `("a"):rep(1e5):find(
/// ".-.-.-.-.-.-.-b")` ran for minutes whatever the instruction limit. This matcher has the same
/// behaviour (the tests compare it with the library's on generated patterns and subjects) and checks
/// the call's deadline as it goes, so a pattern over its time ends with the call's time-limit error.
///
/// The sandbox's `string.find`, `match`, `gmatch` and `gsub` are thin Lua functions over two
/// primitives registered from here (see `LuaEngine.prelude`).
struct LuaPatternMatcher {
    struct Failure: Error {
        var message: String
        /// Over the call's time budget (rather than a malformed pattern).
        var timedOut = false
    }

    /// A capture: where it starts and how long it is, or that it is a position capture `()` or not closed yet.
    struct Capture {
        var start: Int
        var length: Int
        static let unfinished = -1
        static let position = -2
    }

    static let maxCaptures = 32
    /// Nesting of backtracking calls before "pattern too complex", as Lua's own limit.
    static let maxDepth = 200

    let s: UnsafeRawBufferPointer
    let p: UnsafeRawBufferPointer
    let budget: UnsafeMutablePointer<enchufe_lua_budget>?
    var captures: [Capture] = []
    var depth = 0
    var steps = 0

    init(subject: UnsafeRawBufferPointer, pattern: UnsafeRawBufferPointer, budget: UnsafeMutablePointer<enchufe_lua_budget>?) {
        s = subject
        p = pattern
        self.budget = budget
        captures.reserveCapacity(4)
    }

    /// Counts a step of the search and, every few thousand, looks at the clock.
    private mutating func step() throws(Failure) {
        steps &+= 1
        guard steps & 4095 == 0, let budget else { return }
        if enchufe_lua_over_budget(budget) != 0 { throw Failure(message: "time limit exceeded", timedOut: true) }
    }

    // MARK: Single characters and classes

    /// The index just past the single-character class at `i`.
    private func classEnd(_ i: Int) throws(Failure) -> Int {
        var i = i
        let c = p[i]
        i += 1
        if c == UInt8(ascii: "%") {
            guard i < p.count else { throw Failure(message: "malformed pattern (ends with '%')") }
            return i + 1
        }
        if c == UInt8(ascii: "[") {
            if i < p.count, p[i] == UInt8(ascii: "^") { i += 1 }
            // The first character of a set is part of it even when it is ']'.
            repeat {
                guard i < p.count else { throw Failure(message: "malformed pattern (missing ']')") }
                let d = p[i]
                i += 1
                if d == UInt8(ascii: "%") {
                    guard i < p.count else { throw Failure(message: "malformed pattern (missing ']')") }
                    i += 1
                }
            } while i >= p.count || p[i] != UInt8(ascii: "]")
            return i + 1
        }
        return i
    }

    /// Whether `c` is in class `%cl` (upper-case classes are complements), in the C locale.
    static func inClass(_ c: UInt8, _ cl: UInt8) -> Bool {
        let member: Bool
        switch cl | 0x20 {
        case UInt8(ascii: "a"): member = isalpha(Int32(c)) != 0
        case UInt8(ascii: "c"): member = iscntrl(Int32(c)) != 0
        case UInt8(ascii: "d"): member = c >= 0x30 && c <= 0x39
        case UInt8(ascii: "g"): member = isgraph(Int32(c)) != 0
        case UInt8(ascii: "l"): member = islower(Int32(c)) != 0
        case UInt8(ascii: "p"): member = ispunct(Int32(c)) != 0
        case UInt8(ascii: "s"): member = isspace(Int32(c)) != 0
        case UInt8(ascii: "u"): member = isupper(Int32(c)) != 0
        case UInt8(ascii: "w"): member = isalnum(Int32(c)) != 0
        case UInt8(ascii: "x"): member = isxdigit(Int32(c)) != 0
        default: return cl == c
        }
        return isupper(Int32(cl)) != 0 ? !member : member
    }

    /// Whether `c` is in the set `[...]` from `open` (its '[') to `close` (its ']').
    private func inSet(_ c: UInt8, open: Int, close: Int) -> Bool {
        var i = open + 1
        var member = true
        if p[i] == UInt8(ascii: "^") {
            member = false
            i += 1
        }
        while i < close {
            if p[i] == UInt8(ascii: "%") {
                i += 1
                if Self.inClass(c, p[i]) { return member }
                i += 1
            } else if i + 2 < close, p[i + 1] == UInt8(ascii: "-") {
                if p[i] <= c && c <= p[i + 2] { return member }
                i += 3
            } else {
                if p[i] == c { return member }
                i += 1
            }
        }
        return !member
    }

    /// Whether subject byte `c` matches the class from `i` to `end`.
    private func single(_ c: UInt8, _ i: Int, _ end: Int) -> Bool {
        switch p[i] {
        case UInt8(ascii: "."): return true
        case UInt8(ascii: "%"): return Self.inClass(c, p[i + 1])
        case UInt8(ascii: "["): return inSet(c, open: i, close: end - 1)
        default: return p[i] == c
        }
    }

    // MARK: Matching

    /// Where a match of the pattern from `pi` starting at subject index `si` ends, or nil.
    mutating func match(_ si: Int, _ pi: Int) throws(Failure) -> Int? {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw Failure(message: "pattern too complex") }
        var si = si
        var pi = pi
        while true {
            try step()
            guard pi < p.count else { return si }
            switch p[pi] {
            case UInt8(ascii: "("):
                if pi + 1 < p.count, p[pi + 1] == UInt8(ascii: ")") {
                    return try startCapture(si, pi + 2, length: Capture.position)
                }
                return try startCapture(si, pi + 1, length: Capture.unfinished)
            case UInt8(ascii: ")"):
                return try endCapture(si, pi + 1)
            case UInt8(ascii: "$") where pi + 1 == p.count:
                return si == s.count ? si : nil
            case UInt8(ascii: "%") where pi + 1 < p.count && p[pi + 1] == UInt8(ascii: "b"):
                guard let end = try balance(si, pi + 2) else { return nil }
                si = end
                pi += 4
                continue
            case UInt8(ascii: "%") where pi + 1 < p.count && p[pi + 1] == UInt8(ascii: "f"):
                pi += 2
                guard pi < p.count, p[pi] == UInt8(ascii: "[") else { throw Failure(message: "missing '[' after '%f' in pattern") }
                let end = try classEnd(pi)
                let previous: UInt8 = si == 0 ? 0 : s[si - 1]
                let current: UInt8 = si < s.count ? s[si] : 0
                guard !inSet(previous, open: pi, close: end - 1), inSet(current, open: pi, close: end - 1) else { return nil }
                pi = end
                continue
            case UInt8(ascii: "%") where pi + 1 < p.count && p[pi + 1] >= 0x30 && p[pi + 1] <= 0x39:
                guard let end = try backReference(si, p[pi + 1]) else { return nil }
                si = end
                pi += 2
                continue
            default:
                break
            }
            let end = try classEnd(pi)
            let suffix: UInt8 = end < p.count ? p[end] : 0
            guard si < s.count, single(s[si], pi, end) else {
                // None of it here: fine when it may occur zero times.
                guard suffix == UInt8(ascii: "*") || suffix == UInt8(ascii: "?") || suffix == UInt8(ascii: "-") else { return nil }
                pi = end + 1
                continue
            }
            switch suffix {
            case UInt8(ascii: "?"):
                if let r = try match(si + 1, end + 1) { return r }
                pi = end + 1
            case UInt8(ascii: "+"):
                return try expandGreedily(si + 1, pi, end)
            case UInt8(ascii: "*"):
                return try expandGreedily(si, pi, end)
            case UInt8(ascii: "-"):
                return try expandLazily(si, pi, end)
            default:
                si += 1
                pi = end
            }
        }
    }

    private mutating func expandGreedily(_ si: Int, _ pi: Int, _ end: Int) throws(Failure) -> Int? {
        var n = 0
        while si + n < s.count, single(s[si + n], pi, end) {
            n += 1
            try step()
        }
        while n >= 0 {
            if let r = try match(si + n, end + 1) { return r }
            n -= 1
        }
        return nil
    }

    private mutating func expandLazily(_ si: Int, _ pi: Int, _ end: Int) throws(Failure) -> Int? {
        var si = si
        while true {
            if let r = try match(si, end + 1) { return r }
            guard si < s.count, single(s[si], pi, end) else { return nil }
            si += 1
        }
    }

    private mutating func startCapture(_ si: Int, _ pi: Int, length: Int) throws(Failure) -> Int? {
        guard captures.count < Self.maxCaptures else { throw Failure(message: "too many captures") }
        captures.append(Capture(start: si, length: length))
        if let r = try match(si, pi) { return r }
        captures.removeLast()
        return nil
    }

    private mutating func endCapture(_ si: Int, _ pi: Int) throws(Failure) -> Int? {
        guard let open = captures.lastIndex(where: { $0.length == Capture.unfinished }) else {
            throw Failure(message: "invalid pattern capture")
        }
        captures[open].length = si - captures[open].start
        if let r = try match(si, pi) { return r }
        captures[open].length = Capture.unfinished
        return nil
    }

    /// `%bxy` from `pi` (at x): a balanced run from x to its y.
    private mutating func balance(_ si: Int, _ pi: Int) throws(Failure) -> Int? {
        guard pi + 1 < p.count else { throw Failure(message: "malformed pattern (missing arguments to '%b')") }
        guard si < s.count, s[si] == p[pi] else { return nil }
        let open = p[pi], close = p[pi + 1]
        var level = 1
        var i = si + 1
        while i < s.count {
            try step()
            if s[i] == close {
                level -= 1
                if level == 0 { return i + 1 }
            } else if s[i] == open {
                level += 1
            }
            i += 1
        }
        return nil
    }

    /// `%1`...`%9`: the text of an earlier capture, again.
    private mutating func backReference(_ si: Int, _ digit: UInt8) throws(Failure) -> Int? {
        let index = Int(digit) - 0x31
        guard index >= 0, index < captures.count, captures[index].length != Capture.unfinished else {
            throw Failure(message: "invalid capture index %\(index + 1) in pattern")
        }
        let capture = captures[index]
        guard capture.length >= 0, s.count - si >= capture.length else { return nil }
        for k in 0..<capture.length where s[capture.start + k] != s[si + k] { return nil }
        return si + capture.length
    }

    // MARK: Searching

    /// The first match at or after `from` (only at `from` when `anchored`) whose end is not
    /// `notEndingAt` (how `gmatch` and `gsub` avoid an empty match where the last one ended): its
    /// start and end.
    mutating func search(from: Int, pattern start: Int, anchored: Bool, notEndingAt: Int = -1) throws(Failure) -> (Int, Int)? {
        var si = from
        while si <= s.count {
            captures.removeAll(keepingCapacity: true)
            depth = 0
            if let end = try match(si, start), end != notEndingAt { return (si, end) }
            if anchored { return nil }
            si += 1
        }
        return nil
    }
}
