import Foundation
import Timestamps

/// A cron expression read in a time zone: the thing that answers "when is the next run?".
///
/// Daylight-saving policy (docs/design.md, Cron expressions):
/// - a wall-clock time that does not exist because the clocks jumped forward (e.g. 02:30 on a
///   spring-forward night) runs once, at the first instant after the gap, so a daily backup is
///   never lost to DST (the Kubernetes CronJob skips it);
/// - a wall-clock time that occurs twice because the clocks went back matches at each
///   occurrence, as in the CronJob.
///
/// Next-run computation walks the zone's offset segments (between two transitions the UTC
/// offset is constant) and, inside each, jumps field by field over wall-clock readings, so it
/// takes microseconds even for expressions that match once in years.
public struct CronSchedule: Sendable {
    public let expression: CronExpression
    public let timeZone: TimeZone

    /// Parses `expression` and resolves its zone: the expression's `CRON_TZ=`/`TZ=` prefix, else
    /// `timeZone`, else UTC. Giving both a prefix and `timeZone` is an error.
    public init(_ expression: String, timeZone zoneName: String? = nil) throws(CronError) {
        let parsed = try CronExpression(parsing: expression)
        if let prefix = parsed.timeZonePrefix, let zoneName {
            throw .conflictingTimeZones(prefix: prefix, timeZone: zoneName)
        }
        self.expression = parsed
        self.timeZone = try Self.zone(named: parsed.timeZonePrefix ?? zoneName ?? "UTC")
    }

    /// Looks up an IANA zone name. Accepts what Go's `time.LoadLocation` accepts from the tz
    /// database (including `UTC` and links such as `US/Eastern`); rejects `Local` and ICU's
    /// invented forms such as `GMT+5`, which are not zone names.
    public static func zone(named name: String) throws(CronError) -> TimeZone {
        if name == "UTC" { return TimeZone(identifier: "UTC")! }
        guard let zone = TimeZone(identifier: name), zone.identifier == name else {
            throw .invalidTimeZone(name)
        }
        return zone
    }

    /// The first run strictly after `date`, or nil when the expression can never match
    /// (for example `0 0 30 2 *`).
    public func nextRun(after date: Date) -> Date? {
        if let interval = expression.interval {  // robfig's ConstantDelaySchedule.Next
            return Self.date(Int64(date.timeIntervalSince1970.rounded(.down)) + interval)
        }
        guard expression.canEverMatch else { return nil }
        var segmentStart = Int64(date.timeIntervalSince1970.rounded(.down))
        var strictly = true  // runs must be strictly after `date`; later segments include their start
        // Offsets change at most a few times a year, and a satisfiable expression matches at
        // least every eight years: this bound is generous and only stops a runaway loop.
        for _ in 0..<512 {
            let offset = Self.offset(timeZone, at: segmentStart)
            let transition = timeZone.nextDaylightSavingTimeTransition(after: Self.date(segmentStart))
                .map { Int64($0.timeIntervalSince1970.rounded(.down)) }
            let firstCandidate = CivilTime.minute(atOrAfter: segmentStart + offset, strictly: strictly)
            if let match = expression.firstMatch(atOrAfter: firstCandidate, before: transition.map { $0 + offset }) {
                return Self.date(match - offset)
            }
            guard let transition else { return nil }
            let newOffset = Self.offset(timeZone, at: transition)
            if newOffset > offset,
               expression.firstMatch(
                   atOrAfter: CivilTime.minute(atOrAfter: transition + offset, strictly: false),
                   before: transition + newOffset) != nil
            {
                return Self.date(transition)  // a wall-clock match inside the skipped hour
            }
            segmentStart = transition
            strictly = false
        }
        return nil
    }

    /// The first run strictly after `date` of a schedule whose runs count from `anchor` (its
    /// last scheduled time, else its creation): for `@every` the runs are `anchor + k * interval`,
    /// as the CronJob controller computes them; for any other expression the anchor is irrelevant.
    public func nextRun(after date: Date, anchor: Date) -> Date? {
        guard let interval = expression.interval else { return nextRun(after: date) }
        let start = Int64(anchor.timeIntervalSince1970.rounded(.down))
        let elapsed = max(0, Int64(date.timeIntervalSince1970.rounded(.down)) - start)
        return Self.date(start + (elapsed / interval + 1) * interval)
    }

    /// The next `count` runs strictly after `date`, fewer when the schedule runs out.
    public func nextRuns(after date: Date, count: Int) -> [Date] {
        var runs: [Date] = []
        var from = date
        while runs.count < count, let next = nextRun(after: from) {
            runs.append(next)
            from = next
        }
        return runs
    }

    /// The most recent run at or before `date` and strictly after `earliest` (the CronJob's
    /// "most recent missed time"), or nil when there is none. A binary search over
    /// ``nextRun(after:)``, so a long outage of an every-minute schedule costs a few dozen
    /// steps, not one per missed minute.
    public func lastRun(atOrBefore date: Date, after earliest: Date) -> Date? {
        if let interval = expression.interval {
            let start = Int64(earliest.timeIntervalSince1970.rounded(.down))
            let runs = (Int64(date.timeIntervalSince1970.rounded(.down)) - start) / interval
            return runs >= 1 ? Self.date(start + runs * interval) : nil
        }
        guard var low = nextRun(after: earliest), low <= date else { return nil }
        var high = date  // no run lies in (high, date] once a probe there came back empty
        while let following = nextRun(after: low), following <= date {
            let middle = low + (high.timeIntervalSince(low) / 2).rounded(.down)
            if middle > following, let probe = nextRun(after: middle), probe <= date {
                low = probe
            } else {
                if middle > following { high = middle }
                low = following
            }
        }
        return low
    }

    private static func offset(_ zone: TimeZone, at seconds: Int64) -> Int64 {
        Int64(zone.secondsFromGMT(for: date(seconds)))
    }

    private static func date(_ seconds: Int64) -> Date {
        Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}
