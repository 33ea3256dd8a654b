import CLua
import Glibc

/// The primitives the sandbox's `string.find`, `match`, `gmatch` and `gsub` call (see
/// `LuaEngine.prelude`): pushing captures and replacements, and the matcher and `memmem` as Lua
/// functions that report errors for the trampoline to raise.
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
