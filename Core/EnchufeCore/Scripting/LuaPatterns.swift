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

// MARK: The primitives the sandbox's string functions call

extension LuaPatternMatcher {
    /// Pushes capture `i` (or the whole match `start..<end` when the pattern has none and `i` is 0).
    private func pushCapture(_ i: Int, _ state: OpaquePointer, _ start: Int, _ end: Int) throws(Failure) {
        if i >= captures.count {
            guard i == 0 else { throw Failure(message: "invalid capture index %\(i + 1)") }
            lua_pushlstring(state, s.baseAddress.map { $0 + start }?.assumingMemoryBound(to: CChar.self), end - start)
            return
        }
        let c = captures[i]
        switch c.length {
        case Capture.unfinished: throw Failure(message: "unfinished capture")
        case Capture.position: lua_pushinteger(state, lua_Integer(c.start + 1))
        default: lua_pushlstring(state, s.baseAddress.map { $0 + c.start }?.assumingMemoryBound(to: CChar.self), c.length)
        }
    }

    /// Pushes the captures (the whole match when there are none and `whole`); returns how many.
    func pushCaptures(_ state: OpaquePointer, _ start: Int, _ end: Int, whole: Bool) throws(Failure) -> Int32 {
        let n = captures.isEmpty && whole ? 1 : captures.count
        guard lua_checkstack(state, Int32(n)) != 0 else { throw Failure(message: "too many captures") }
        for i in 0..<n { try pushCapture(i, state, start, end) }
        return Int32(n)
    }

    /// The result of `repl` (a string with `%0`-`%9` and `%%`) for the match `start..<end`.
    func replacement(_ repl: UnsafeRawBufferPointer, _ start: Int, _ end: Int, into out: inout [UInt8]) throws(Failure) {
        var i = 0
        while i < repl.count {
            let c = repl[i]
            i += 1
            guard c == UInt8(ascii: "%") else {
                out.append(c)
                continue
            }
            guard i < repl.count else { throw Failure(message: "invalid use of '%' in replacement string") }
            let d = repl[i]
            i += 1
            if d == UInt8(ascii: "%") {
                out.append(d)
            } else if d >= 0x30 && d <= 0x39 {
                let index = Int(d) - 0x30
                if index == 0 {
                    out.append(contentsOf: s[start..<end])
                } else if index - 1 < captures.count || index == 1 {
                    let k = index - 1
                    if k >= captures.count {
                        out.append(contentsOf: s[start..<end])  // %1 with no captures: the whole match
                        continue
                    }
                    let capture = captures[k]
                    switch capture.length {
                    case Capture.unfinished: throw Failure(message: "unfinished capture")
                    case Capture.position: out.append(contentsOf: Array(String(capture.start + 1).utf8))
                    default: out.append(contentsOf: s[capture.start..<(capture.start + capture.length)])
                    }
                } else {
                    throw Failure(message: "invalid capture index %\(index) in replacement string")
                }
            } else {
                throw Failure(message: "invalid use of '%' in replacement string")
            }
        }
    }
}

/// Bytes of the string at `index` (the Lua wrappers checked the types).
private func bytes(_ state: OpaquePointer, _ index: Int32) -> UnsafeRawBufferPointer {
    var length = 0
    let text = lua_tolstring(state, index, &length)
    return UnsafeRawBufferPointer(start: text, count: length)
}

/// Runs `body` with the memory limit lifted: results are pushed from the host side (they are pieces
/// of a subject already in memory), and a failed allocation there must not unwind through Swift.
private func pushing<T>(_ state: OpaquePointer, _ body: () throws(LuaPatternMatcher.Failure) -> T) throws(LuaPatternMatcher.Failure) -> T {
    let budget = enchufe_lua_budget_of(state)!
    let enforce = budget.pointee.enforce
    budget.pointee.enforce = 0
    defer { budget.pointee.enforce = enforce }
    return try body()
}

/// Returns -1 with the failure's message on the stack, for the trampoline to raise.
private func failed(_ state: OpaquePointer, _ failure: LuaPatternMatcher.Failure) -> Int32 {
    let budget = enchufe_lua_budget_of(state)!
    let enforce = budget.pointee.enforce
    budget.pointee.enforce = 0
    lua_pushstring(state, failure.message)
    budget.pointee.enforce = enforce
    return -1
}

/// `search(s, pattern, from, mode, notEndingAt)`: `from` 0-based; mode 0 for `find`, 1 for `match`
/// and `gsub` (both honour a leading '^' as an anchor), 2 for `gmatch` (where '^' is a character).
/// Returns nil, or start (0-based), end (exclusive), then the captures (for mode 0 only the explicit
/// ones; otherwise the whole match when there are none).
let luaPatternSearch: enchufe_lua_swift_function = { state in
    guard let state else { return 0 }
    let subject = bytes(state, 1), pattern = bytes(state, 2)
    let from = Int(lua_tointegerx(state, 3, nil))
    let mode = lua_tointegerx(state, 4, nil)
    let notEndingAt = Int(lua_tointegerx(state, 5, nil))
    let budget = enchufe_lua_budget_of(state)
    if let budget, enchufe_lua_over_budget(budget) != 0 { return failed(state, .init(message: "time limit exceeded", timedOut: true)) }
    var matcher = LuaPatternMatcher(subject: subject, pattern: pattern, budget: budget)
    let anchored = mode != 2 && pattern.first == UInt8(ascii: "^")
    do throws(LuaPatternMatcher.Failure) {
        guard let (start, end) = try matcher.search(from: from, pattern: anchored ? 1 : 0, anchored: anchored, notEndingAt: notEndingAt) else {
            lua_pushnil(state)
            return 1
        }
        return try pushing(state) { () throws(LuaPatternMatcher.Failure) -> Int32 in
            lua_pushinteger(state, lua_Integer(start))
            lua_pushinteger(state, lua_Integer(end))
            return 2 + (try matcher.pushCaptures(state, start, end, whole: mode != 0))
        }
    } catch {
        return failed(state, error)
    }
}

/// `gsub_string(s, pattern, repl, max)`: `string.gsub` with a replacement string, whole in Swift.
let luaPatternReplace: enchufe_lua_swift_function = { state in
    guard let state else { return 0 }
    let subject = bytes(state, 1), pattern = bytes(state, 2), repl = bytes(state, 3)
    let max = lua_tointegerx(state, 4, nil)
    let budget = enchufe_lua_budget_of(state)
    if let budget, enchufe_lua_over_budget(budget) != 0 { return failed(state, .init(message: "time limit exceeded", timedOut: true)) }
    var matcher = LuaPatternMatcher(subject: subject, pattern: pattern, budget: budget)
    let anchored = pattern.first == UInt8(ascii: "^")
    var out: [UInt8] = []
    var src = 0, last = -1
    var count: lua_Integer = 0
    do throws(LuaPatternMatcher.Failure) {
        while count < max {
            guard let (start, end) = try matcher.search(from: src, pattern: anchored ? 1 : 0, anchored: anchored, notEndingAt: last) else { break }
            out.append(contentsOf: subject[src..<start])
            try matcher.replacement(repl, start, end, into: &out)
            count += 1
            src = end
            last = end
            if anchored { break }
        }
        out.append(contentsOf: subject[src...])
        // A result over the memory limit is the script's error, as for any string it builds.
        let budgetLeft = budget.map { Int($0.pointee.limit) - Int($0.pointee.used) } ?? .max
        guard out.count <= budgetLeft else { return failed(state, .init(message: "not enough memory")) }
        return try pushing(state) { () throws(LuaPatternMatcher.Failure) -> Int32 in
            _ = out.withUnsafeBytes { lua_pushlstring(state, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
            lua_pushinteger(state, count)
            return 2
        }
    } catch {
        return failed(state, error)
    }
}

/// `find_plain(s, text, from)`: the first occurrence of `text` at or after `from` (0-based), by
/// glibc's `memmem` (linear time), as start and end (1-based, inclusive), or nil.
let luaPlainFind: enchufe_lua_swift_function = { state in
    guard let state else { return 0 }
    let subject = bytes(state, 1), text = bytes(state, 2)
    let from = Int(lua_tointegerx(state, 3, nil))
    guard from <= subject.count else {
        lua_pushnil(state)
        return 1
    }
    if text.isEmpty {
        lua_pushinteger(state, lua_Integer(from + 1))
        lua_pushinteger(state, lua_Integer(from))
        return 2
    }
    guard let base = subject.baseAddress, let found = memmem(base + from, subject.count - from, text.baseAddress, text.count) else {
        lua_pushnil(state)
        return 1
    }
    let start = base.distance(to: UnsafeRawPointer(found))
    lua_pushinteger(state, lua_Integer(start + 1))
    lua_pushinteger(state, lua_Integer(start + text.count))
    return 2
}
