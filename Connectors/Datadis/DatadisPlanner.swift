import EnchufeCore
import Foundation

/// Which months of a supply's curve `datadis.consumption` and `datadis.max_power` ask for at one
/// trigger, and when the supply's next request is due: a pure function of what the node knows
/// (now, `from`, `older_every`, each month's ledger entry and whether it is recorded complete, the
/// requests left in the trigger), so its rules are tested without a store or a server
/// (`DatadisPlannerTests`).
///
/// The rules: Datadis keeps 24 months (the current one and 23 before it); from `from` (default 12
/// months back) to the current month; the current and the previous month first (data arrives days
/// or weeks late), then the older ones, oldest first; never a month recorded complete; never a
/// query within 24 hours of the same query (Datadis answers 429 and has locked users out); an older
/// month not complete yet at most every `older_every`; at most the requests left, the others due at
/// once at the next trigger.
struct DatadisPlanner: Sendable {
    /// What the store says of one month before the trigger.
    struct Known: Sendable, Equatable {
        /// Fetched complete before (its readings committed): never asked again.
        var recorded = false
        /// When the same query was last entered in the ledger, if ever.
        var lastAsked: Date?
    }

    struct Plan: Sendable, Equatable {
        /// The months to ask for, in order.
        var requests: [Month] = []
        /// Months that may be asked but not in this trigger (no requests left).
        var deferred: [Month] = []
        /// When the supply's next request is due: the earliest of the months' next allowed times,
        /// now if some were deferred; nil when every month is recorded.
        var nextDue: Date?
    }

    let now: Date
    /// First month to ask for (`from`); nil: 12 months back.
    let from: Month?
    /// How often an older month, not complete yet, is asked again.
    let olderEvery: TimeInterval

    /// The month of `now`, in Spain's peninsular time.
    var current: Month { Month(containing: LocalDay(containing: now)) }

    /// The months to consider, in the order they are asked.
    var months: [Month] {
        let current = self.current
        let first = max(from ?? current.adding(-12), current.adding(-23))
        var months = [current, current.adding(-1)].filter { $0 >= first }
        var m = first
        while m < current.adding(-1) {
            months.append(m)
            m = m.adding(1)
        }
        return months
    }

    /// The current and the previous month: asked again once a day until they are past.
    func isRecent(_ month: Month) -> Bool { month >= current.adding(-1) }

    /// How long after a query of `month` the same query may go again.
    func interval(_ month: Month) -> TimeInterval {
        isRecent(month) ? DatadisLedger.window : max(olderEvery, DatadisLedger.window)
    }

    /// The plan, given what is known of each month (a month not in `known` is neither recorded nor
    /// in the ledger) and the requests left in this trigger.
    func plan(_ known: [Month: Known], budget: Int) -> Plan {
        var plan = Plan()
        func due(_ date: Date) { plan.nextDue = min(plan.nextDue ?? date, date) }
        for month in months {
            let state = known[month] ?? Known()
            if state.recorded { continue }
            if let asked = state.lastAsked, asked.addingTimeInterval(interval(month)) > now {
                due(asked.addingTimeInterval(interval(month)))
                continue
            }
            if plan.requests.count < budget {
                plan.requests.append(month)
                due(now.addingTimeInterval(interval(month)))
            } else {
                plan.deferred.append(month)
                due(now)
            }
        }
        return plan
    }
}
