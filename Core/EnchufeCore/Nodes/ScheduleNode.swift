import Foundation

/// `schedule`: fires messages on a cron expression or a fixed interval, in a time zone
/// (see `Schedule` for the daylight-saving rule).
struct ScheduleNode: SourceNode {
    enum Key {
        static let cron = OptionKey<String?>("cron", .cron, doc: "When to fire, as 5 cron fields.", example: "30 20 * * *")
        static let every = OptionKey<Duration?>("every", doc: "Fire at this interval instead of on a cron expression.", example: "15m")
        static let timezone = OptionKey<String>("timezone", .timezone, default: "Europe/Madrid", doc: "The time zone the cron fields are read in.")
        static let runAtStart = OptionKey<Bool>("run_at_start", default: true, doc: "Also fire once when the flow starts.")
        static let payload = OptionKey<JSONValue?>("payload", .any, doc: "The payload of each message (default: the fire time).")
    }

    static let spec = NodeSpec(
        type: "schedule", kind: .source,
        summary: "Fires a message on a cron expression or every fixed interval, DST-correct in a time zone",
        doc: """
            Give exactly one of `cron` (5 fields: minute hour day-of-month month day-of-week) and `every`.
            Daylight-saving changes: a time skipped when clocks go forward (02:30 on the last Sunday of
            March in Europe/Madrid) fires once, at 03:00; a time repeated when clocks go back fires once,
            at its first occurrence, unless the hour field is `*`, in which case the job keeps its rhythm
            through both repetitions. `every` under a day fires on a grid aligned to the Unix epoch
            (`every: 15m` fires at :00, :15, :30 and :45); whole days fire at local midnight.
            The message's payload is the `payload` option, or the fire time (ISO-8601, UTC); its
            attribute `fired_at` is the fire time.
            """,
        options: [
            Key.cron.spec,
            Key.every.spec,
            Key.timezone.spec,
            Key.runAtStart.spec,
            Key.payload.spec,
        ],
        example: """
            - id: evening
              type: schedule
              cron: "30 20 * * *"
              timezone: Europe/Madrid
              to: [prices]
            """,
        check: { options in
            switch (options.has(Key.cron), options.has(Key.every)) {
            case (true, true): return [OptionProblem(option: "every", "give either 'cron' or 'every', not both")]
            case (false, false): return [OptionProblem("needs 'cron' (e.g. \"30 20 * * *\") or 'every' (e.g. 15m)")]
            default:
                if let every = options[Key.every], every <= .zero {
                    return [OptionProblem(option: "every", "'every' must be longer than 0s")]
                }
                return []
            }
        },
        make: { context in .source(try ScheduleNode(context.options)) })

    let schedule: Schedule
    let runAtStart: Bool
    let payload: JSONValue?

    init(_ options: NodeOptions) throws {
        let zone = TimeZone(identifier: options[Key.timezone]) ?? .gmt
        if let cron = options[Key.cron] {
            schedule = .cron(try CronExpression(cron), zone)
        } else if let every = options[Key.every] {
            schedule = .every(every, zone)
        } else {
            throw PermanentError("schedule needs 'cron' or 'every'")
        }
        runAtStart = options[Key.runAtStart]
        payload = options[Key.payload]
    }

    func run(_ context: SourceContext) async throws {
        let clock = context.clock
        var last = clock.now()
        if runAtStart { try await context.emit(message(firedAt: last)) }
        while true {
            var next = schedule.next(after: last)
            let now = clock.now()
            if next < now.addingTimeInterval(-60) {
                // The hub was not running (or the machine slept): fire once now rather than catch up every miss.
                context.logger.warning("missed fire times since \(ISO8601.string(next)); resuming")
                next = now
            }
            try await clock.sleep(until: next)
            try await context.emit(message(firedAt: next))
            last = next
        }
    }

    func message(firedAt: Date) -> Message {
        let at = ISO8601.string(firedAt)
        return Message(payload: payload ?? .string(at), attributes: ["fired_at": at])
    }
}
