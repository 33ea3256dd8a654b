import Foundation

/// `alert`: raises and clears a named alert from readings, with hysteresis and a duration, and
/// sends one message per change of state.
struct AlertNode: TransformNode {
    enum Key {
        static let name = RequiredOptionKey<String>("name", doc: "The alert's name, as `GET /api/v1/alerts` shows it.", example: "es-fr-saturated")
        static let message = OptionKey<String?>("message", doc: "What the alert says (default: its name).", example: "ES-FR interconnection saturated: price decoupling likely")
        static let series = OptionKey<String?>(
            "series", doc: "Only readings of this series; a trailing `*` matches a prefix (`interconnection:*`).", example: "interconnection:*")
        static let quantity = OptionKey<String?>("quantity", doc: "Only readings of this quantity.", example: "utilisation")
        static let above = OptionKey<Double?>("above", doc: "Raise when the value is at or above this.", example: 90)
        static let below = OptionKey<Double?>("below", doc: "Raise when the value is at or below this.")
        static let absolute = OptionKey<Bool>("absolute", default: false, doc: "Compare the value's magnitude (|spread| above a threshold).")
        static let clearBelow = OptionKey<Double?>("clear_below", doc: "With `above`: clear only once the value is below this (hysteresis).", example: 85)
        static let clearAbove = OptionKey<Double?>("clear_above", doc: "With `below`: clear only once the value is above this (hysteresis).")
        static let condition = OptionKey<String?>(
            "condition", .expression, doc: "Raise when this Lua expression is true; `item` is the reading (`item.value`, `item.series`), `msg` the message.")
        static let clearCondition = OptionKey<String?>(
            "clear_condition", .expression, doc: "With `condition`: clear when this is true (default: when `condition` is not).")
        static let holdFor = OptionKey<Duration>(
            "for", default: .zero, doc: "How long (in the readings' time) the raising condition must hold without a break.", example: "30m")
        static let clearFor = OptionKey<Duration>("clear_for", default: .zero, doc: "How long the clearing condition must hold.")
        static let topic = OptionKey<String?>("topic", doc: "The topic of the messages sent.", example: "alerts/es-fr")
    }

    static let options: [OptionSpec] = [
        Key.name.spec, Key.message.spec, Key.series.spec, Key.quantity.spec, Key.above.spec, Key.below.spec, Key.absolute.spec,
        Key.clearBelow.spec, Key.clearAbove.spec, Key.condition.spec, Key.clearCondition.spec, Key.holdFor.spec, Key.clearFor.spec,
        Key.topic.spec,
    ] + LuaLimits.optionSpecs

    static let doc = """
        Watches the readings of the messages it receives (those of `series` and `quantity`, when
        given) and keeps one alert per series and quantity. The alert is raised when the raising
        condition — the value at or `above` a threshold, at or `below` one, or a Lua `condition` —
        has held for `for` without a break (in the readings' own time: two quarter-hours hold for
        `30m`; a gap between readings breaks the run), and cleared when the clearing condition has
        held for `clear_for`: below `clear_below` (or above `clear_above`) for hysteresis, the Lua
        `clear_condition`, or else the raising condition no longer holding. With `absolute` the
        thresholds apply to the value's magnitude.

        Readings are weighed in time order, each once: a reading not later than the last one weighed
        (a day pulled again, a message replayed) changes nothing. The state is kept in the store and
        saved before anything is sent, only from the version read, so a restart carries on where it
        was and of two instances weighing the same readings only one raises the alert.

        For each change of state one message goes out (never one per reading):
        `{"alert", "state": "raised"|"cleared", "message", "series", "quantity", "value", "at",
        "since", "flow", "node"}` — `at` the start of the reading that changed it, `since` when its
        condition began to hold — with the topic `topic`, ready for `log`, `mqtt.out` or
        `http.request`. Current alerts and the latest changes are at `GET /api/v1/alerts` and on
        the status page.
        """

    static let example = """
        - id: saturated
          type: alert
          name: es-fr-saturated
          message: "ES-FR interconnection saturated: price decoupling likely"
          series: "interconnection:*"
          quantity: utilisation
          above: 90
          clear_below: 85
          for: 30m
          to: [log]
        """

    static func check(_ o: NodeOptions) -> [OptionProblem] {
        var problems: [OptionProblem] = []
        let raising = [o.has(Key.above), o.has(Key.below), o.has(Key.condition)].filter { $0 }.count
        if raising != 1 { problems.append(OptionProblem(option: "above", "give exactly one of `above`, `below` and `condition`")) }
        if o.has(Key.clearBelow) && !o.has(Key.above) { problems.append(OptionProblem(option: "clear_below", "goes with `above`")) }
        if o.has(Key.clearAbove) && !o.has(Key.below) { problems.append(OptionProblem(option: "clear_above", "goes with `below`")) }
        if o.has(Key.clearCondition) && !o.has(Key.condition) { problems.append(OptionProblem(option: "clear_condition", "goes with `condition`")) }
        if let above = o[Key.above], let clear = o[Key.clearBelow], clear > above {
            problems.append(OptionProblem(option: "clear_below", "must not be above `above` (\(above))"))
        }
        if let below = o[Key.below], let clear = o[Key.clearAbove], clear < below {
            problems.append(OptionProblem(option: "clear_above", "must not be below `below` (\(below))"))
        }
        return problems
    }

    static let spec = NodeSpec(
        type: "alert", kind: .transform,
        summary: "Raises and clears a named alert from readings (threshold with hysteresis, duration, or Lua), one message per change, its state in the store",
        doc: doc, options: options, example: example, check: check,
        make: { context in .transform(try AlertNode(context.options)) })

    /// The same node under the name SPEC.md lists among the transforms.
    static let thresholdSpec = NodeSpec(
        type: "alert.threshold", kind: .transform,
        summary: "The `alert` node under the name SPEC.md gives it",
        doc: "Everything as `alert`:\n\n" + doc, options: options,
        example: example.replacingOccurrences(of: "type: alert", with: "type: alert.threshold"), check: check,
        make: { context in .transform(try AlertNode(context.options)) })

    let name: String
    let message: String
    let series: String?
    let quantity: String?
    let rule: AlertRule
    let topic: String?

    init(_ o: NodeOptions) throws {
        name = try o.required(Key.name)
        message = o[Key.message] ?? name
        series = o[Key.series]
        quantity = o[Key.quantity]
        topic = o[Key.topic]
        let raise: AlertRule.Test
        let clear: AlertRule.Test
        let absolute = o[Key.absolute]
        if let above = o[Key.above] {
            raise = .compare(above, upward: true, inclusive: true, absolute: absolute)
            clear = .compare(o[Key.clearBelow] ?? above, upward: false, inclusive: false, absolute: absolute)
        } else if let below = o[Key.below] {
            raise = .compare(below, upward: false, inclusive: true, absolute: absolute)
            clear = .compare(o[Key.clearAbove] ?? below, upward: true, inclusive: false, absolute: absolute)
        } else {
            let expressions = NodeExpressions(limits: LuaLimits(options: o))
            guard let source = LuaSource.option(Key.condition.name, in: o) else {
                throw PermanentError("alert: give one of `above`, `below` and `condition`")
            }
            let condition = try expressions.condition(source)
            raise = .expression(condition, whenTrue: true)
            if let clearSource = LuaSource.option(Key.clearCondition.name, in: o) {
                clear = .expression(try expressions.condition(clearSource), whenTrue: true)
            } else {
                clear = .expression(condition, whenTrue: false)
            }
        }
        rule = AlertRule(raise: raise, clear: clear, holdFor: o[Key.holdFor].seconds, clearFor: o[Key.clearFor].seconds)
    }

    func watches(_ r: Reading) -> Bool {
        if let quantity, r.quantity != quantity { return false }
        guard let series else { return true }
        if series.hasSuffix("*") { return r.series.hasPrefix(series.dropLast()) }
        return r.series == series
    }

    func process(_ input: Message, _ context: NodeContext) async throws -> [Output] {
        let watched = Dictionary(grouping: input.readings.filter(watches)) { AlertKey(
            tenant: context.tenant, flow: context.flow, node: context.node, series: $0.series, quantity: $0.quantity)
        }
        var events: [AlertEvent] = []
        for key in watched.keys.sorted(by: { ($0.series, $0.quantity) < ($1.series, $1.quantity) }) {
            let readings = watched[key]!.sorted { $0.ts < $1.ts }
            events += try await advance(key, with: readings, in: input, context)
        }
        return events.map { event in
            .out(Message(payload: event.json, topic: topic, attributes: ["alert": name, "state": event.state]))
        }
    }

    /// Weighs `readings` against the stored state of `key` and saves the outcome; another writer
    /// saving first means weighing again from what it saved.
    func advance(_ key: AlertKey, with readings: [Reading], in input: Message, _ context: NodeContext) async throws -> [AlertEvent] {
        for _ in 0..<8 {
            let stored = try await context.store.alert(key)
            var state = stored ?? AlertState(key: key, name: name, message: message, updatedAt: context.clock.now())
            let before = state
            let events = try rule.advance(&state, with: readings, in: input, now: context.clock.now())
            guard state != before || stored == nil else { return [] }
            if try await context.store.saveAlert(state, events: events) { return events }
        }
        throw Contention(description: "alert '\(name)': the state of \(key.series) \(key.quantity) kept changing under it (another instance saving at the same time)")
    }

    /// Retried as any failure is: the next attempt reads what the other writer saved.
    struct Contention: Error, CustomStringConvertible {
        var description: String
    }
}

/// When an alert is raised and cleared: two tests and how long each must hold (a pure value, so
/// the rules are tested apart from any store).
struct AlertRule: Sendable {
    enum Test: Sendable {
        /// The value (or its magnitude) against a limit: at or above it (`upward`, `inclusive`),
        /// above it, at or below it, below it.
        case compare(Double, upward: Bool, inclusive: Bool, absolute: Bool)
        /// A Lua condition being true (or, `whenTrue` false, not true).
        case expression(BoundTemplate, whenTrue: Bool)

        func holds(for r: Reading, in message: Message) throws -> Bool {
            switch self {
            case .compare(let limit, let upward, let inclusive, let absolute):
                let v = absolute ? abs(r.value) : r.value
                if v == limit { return inclusive }
                return upward ? v > limit : v < limit
            case .expression(let condition, let whenTrue): return try condition.isTrue(for: message, item: r.json) == whenTrue
            }
        }
    }

    let raise: Test
    let clear: Test
    let holdFor: Double
    let clearFor: Double

    /// Weighs the readings (in time order) not weighed yet; returns the changes of state.
    func advance(_ state: inout AlertState, with readings: [Reading], in message: Message, now: Date) throws -> [AlertEvent] {
        var events: [AlertEvent] = []
        for r in readings {
            if let last = state.lastTs, r.ts <= last { continue }
            let end = r.end
            // A gap since the last reading breaks a run of the condition.
            if let lastEnd = state.lastEnd, r.ts > lastEnd { state.pendingSince = nil }
            let test = state.raised ? clear : raise
            if try test.holds(for: r, in: message) {
                let since = state.pendingSince ?? r.ts
                state.pendingSince = since
                if end.timeIntervalSince(since) >= (state.raised ? clearFor : holdFor) {
                    state.raised.toggle()
                    state.since = r.ts
                    state.value = r.value
                    state.pendingSince = nil
                    events.append(AlertEvent(
                        key: state.key, name: state.name, message: state.message, raised: state.raised, at: r.ts, since: since,
                        value: r.value, recordedAt: now))
                }
            } else {
                state.pendingSince = nil
            }
            state.lastTs = r.ts
            state.lastEnd = end
            state.updatedAt = now
        }
        return events
    }
}
