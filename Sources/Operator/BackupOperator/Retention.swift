import Foundation
import CustomResources

/// Which successful backups a schedule keeps, with restic's `forget` semantics: one pass over
/// the backups newest first; each tier remembers the period of the last backup it kept and
/// keeps a backup whose period differs, until it has kept its count. `keepLast` keeps the
/// newest N outright. A backup is kept when any tier keeps it. Periods are wall-clock hours,
/// days, ISO weeks (Monday first, the ISO week-numbering year), months and years in the
/// schedule's time zone, judged by each backup's time as given (the run's scheduled time for
/// tiered retention, so a clock step at completion never reorders backups). Pure: no I/O.
public enum Retention {
    /// One successful backup: its name and the time retention judges it by.
    public struct Candidate: Sendable, Equatable {
        public var name: String
        public var time: Date

        public init(name: String, time: Date) {
            self.name = name
            self.time = time
        }
    }

    /// What a policy keeps: the names, and how many each tier keeps.
    public struct Decision: Sendable, Equatable {
        public var kept: Set<String>
        public var retained: RetainedBackups
    }

    /// Applies `policy` to `candidates` (any order; ties in time are broken by name, the
    /// greater first, so the result does not depend on the input's order).
    public static func apply(_ policy: RetentionPolicy, to candidates: [Candidate], timeZone: TimeZone) -> Decision {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = timeZone
        let newestFirst = candidates.sorted { $0.time != $1.time ? $0.time > $1.time : $0.name > $1.name }
        struct Tier {
            var remaining: Int
            var last: [Int]?
            var kept = 0
            let period: (Date, Int) -> [Int]
        }
        func tier(_ count: Int?, _ period: @escaping (Date, Int) -> [Int]) -> Tier {
            Tier(remaining: max(count ?? 0, 0), period: period)
        }
        func components(_ units: Set<Calendar.Component>, _ order: [Calendar.Component]) -> (Date, Int) -> [Int] {
            { date, _ in
                let parts = calendar.dateComponents(units, from: date)
                return order.map { parts.value(for: $0) ?? 0 }
            }
        }
        var tiers = [
            tier(policy.keepLast) { _, index in [index] },  // every backup is its own period
            tier(policy.keepHourly, components([.year, .month, .day, .hour], [.year, .month, .day, .hour])),
            tier(policy.keepDaily, components([.year, .month, .day], [.year, .month, .day])),
            tier(policy.keepWeekly, components([.yearForWeekOfYear, .weekOfYear], [.yearForWeekOfYear, .weekOfYear])),
            tier(policy.keepMonthly, components([.year, .month], [.year, .month])),
            tier(policy.keepYearly, components([.year], [.year])),
        ]
        var kept = Set<String>()
        for (index, candidate) in newestFirst.enumerated() {
            for number in tiers.indices where tiers[number].remaining > 0 {
                let period = tiers[number].period(candidate.time, index)
                if period != tiers[number].last {
                    tiers[number].last = period
                    tiers[number].remaining -= 1
                    tiers[number].kept += 1
                    kept.insert(candidate.name)
                }
            }
        }
        func count(_ number: Int, _ keep: Int?) -> Int? { (keep ?? 0) > 0 ? tiers[number].kept : nil }
        return Decision(kept: kept, retained: RetainedBackups(
            last: count(0, policy.keepLast), hourly: count(1, policy.keepHourly), daily: count(2, policy.keepDaily),
            weekly: count(3, policy.keepWeekly), monthly: count(4, policy.keepMonthly), yearly: count(5, policy.keepYearly),
            total: kept.count))
    }
}
