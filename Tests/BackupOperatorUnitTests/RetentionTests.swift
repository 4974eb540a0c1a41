import BackupOperator
import Foundation
import KubernetesClient
import CustomResources
import Testing

/// ``Retention``: restic `forget` semantics, checked against a straightforward reference over
/// random histories, and by hand around DST changes, year ends and ISO week 53.
@Suite("Retention: tiered keep rules (restic forget semantics)")
struct RetentionTests {
    /// The policy's words, done the obvious way: per tier, cut the backups, newest first, into
    /// runs of the same period, take the N newest runs, keep the newest backup of each. A
    /// period that comes back after another (an hour repeated when DST ends: in Pacific/Chatham
    /// 03:xx, 02:xx, then 03:xx again) is a new run, as in restic, which compares each backup's
    /// period with the last one its tier kept.
    static func reference(_ policy: RetentionPolicy, _ candidates: [Retention.Candidate], zone: TimeZone) -> (Set<String>, RetainedBackups) {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = zone
        let sorted = candidates.sorted { $0.time != $1.time ? $0.time > $1.time : $0.name > $1.name }
        func keep(_ count: Int?, _ period: (Int, Retention.Candidate) -> String) -> [String]? {
            guard let count, count > 0 else { return nil }
            var newestOfRun: [String] = []
            var previous: String?
            for (index, candidate) in sorted.enumerated() {
                let key = period(index, candidate)
                if key != previous {
                    newestOfRun.append(candidate.name)
                    previous = key
                }
            }
            return Array(newestOfRun.prefix(count))
        }
        func key(_ components: Set<Calendar.Component>) -> (Int, Retention.Candidate) -> String {
            { _, candidate in
                let parts = calendar.dateComponents(components, from: candidate.time)
                return [parts.yearForWeekOfYear, parts.weekOfYear, parts.year, parts.month, parts.day, parts.hour].map { "\($0 ?? -1)" }.joined(separator: "/")
            }
        }
        let tiers = [
            keep(policy.keepLast) { index, _ in "\(index)" },
            keep(policy.keepHourly, key([.year, .month, .day, .hour])),
            keep(policy.keepDaily, key([.year, .month, .day])),
            keep(policy.keepWeekly, key([.yearForWeekOfYear, .weekOfYear])),
            keep(policy.keepMonthly, key([.year, .month])),
            keep(policy.keepYearly, key([.year])),
        ]
        let kept = Set(tiers.compactMap { $0 }.flatMap { $0 })
        return (kept, RetainedBackups(last: tiers[0]?.count, hourly: tiers[1]?.count, daily: tiers[2]?.count, weekly: tiers[3]?.count,
                                      monthly: tiers[4]?.count, yearly: tiers[5]?.count, total: kept.count))
    }

    @Test("agrees with the reference over 2,000 random histories and policies, in zones with DST and odd offsets")
    func randomHistories() {
        var generator = SystemRandomNumberGenerator()
        let zones = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham"].map { TimeZone(identifier: $0)! }
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        for round in 0..<2_000 {
            let zone = zones[round % zones.count]
            var time = start
            var candidates: [Retention.Candidate] = []
            for index in 0..<Int.random(in: 0...80, using: &generator) {
                // Gaps from seconds to weeks: bursts, hourly and daily runs, outages.
                let gap: Double = [60.0, 1_800, 3_600, 86_400, 7 * 86_400, 40 * 86_400].randomElement(using: &generator)!
                time += Double.random(in: 1...gap, using: &generator)
                candidates.append(.init(name: "b-\(index)", time: time))
            }
            candidates.shuffle(using: &generator)
            func tier() -> Int? { [nil, 0, 1, 2, 3, 7, 24].randomElement(using: &generator)! }
            let policy = RetentionPolicy(keepLast: tier(), keepHourly: tier(), keepDaily: tier(), keepWeekly: tier(), keepMonthly: tier(), keepYearly: tier())
            let decision = Retention.apply(policy, to: candidates, timeZone: zone)
            let (kept, retained) = Self.reference(policy, candidates, zone: zone)
            #expect(decision.kept == kept, "round \(round), \(zone.identifier), \(policy)")
            #expect(decision.retained == retained, "round \(round), \(zone.identifier), \(policy)")
            if decision.kept != kept { return }
        }
    }

    static func at(_ text: String) -> Date { RFC3339Reader.date(text) }

    static func names(_ policy: RetentionPolicy, _ times: [String], zone: String) -> [String] {
        let candidates = times.map { Retention.Candidate(name: $0, time: at($0)) }
        return Retention.apply(policy, to: candidates, timeZone: TimeZone(identifier: zone)!).kept.sorted()
    }

    @Test("DST: the hour repeated when New York falls back is one hour; the hour skipped when it springs forward separates its neighbours")
    func daylightSaving() {
        // 2026-11-01 01:30 EDT (05:30Z) and 01:30 EST (06:30Z): one local hour, 01:00-01:59.
        #expect(Self.names(RetentionPolicy(keepHourly: 2), ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-01T04:30:00Z"], zone: "America/New_York")
                == ["2026-11-01T04:30:00Z", "2026-11-01T06:30:00Z"])
        // In UTC the same three are three hours.
        #expect(Self.names(RetentionPolicy(keepHourly: 3), ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-01T04:30:00Z"], zone: "UTC").count == 3)
        // 2026-03-08: 01:30 EST (06:30Z), then 03:30 EDT (07:30Z): different hours, and one day.
        #expect(Self.names(RetentionPolicy(keepHourly: 1, keepDaily: 1), ["2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z"], zone: "America/New_York")
                == ["2026-03-08T07:30:00Z"])
        #expect(Self.names(RetentionPolicy(keepHourly: 2), ["2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z"], zone: "America/New_York").count == 2)
        // Pacific/Chatham falls back at 03:45 (+13:45) to 02:45 (+12:45) on 2026-04-05, so newest
        // first the local hours go 3, 2, 3, 2: restic compares each with the last kept period,
        // so the hour that comes back is a new one and keepHourly 3 keeps three.
        #expect(Self.names(RetentionPolicy(keepHourly: 3), ["2026-04-04T14:25:00Z", "2026-04-04T14:05:00Z", "2026-04-04T13:45:00Z", "2026-04-04T13:00:00Z"],
                           zone: "Pacific/Chatham") == ["2026-04-04T13:45:00Z", "2026-04-04T14:05:00Z", "2026-04-04T14:25:00Z"])
    }

    @Test("year end: the same two instants are two years in UTC and one in Tokyo; daily periods are the zone's days")
    func yearEnd() {
        let times = ["2025-12-31T23:30:00Z", "2026-01-01T00:30:00Z"]
        #expect(Self.names(RetentionPolicy(keepYearly: 5), times, zone: "UTC") == times)
        #expect(Self.names(RetentionPolicy(keepYearly: 5), times, zone: "Asia/Tokyo") == ["2026-01-01T00:30:00Z"])
        #expect(Self.names(RetentionPolicy(keepDaily: 5), ["2025-12-31T14:00:00Z", "2025-12-31T16:00:00Z"], zone: "Asia/Tokyo").count == 2,
                "23:00 and 01:00 in Tokyo are two days")
    }

    @Test("ISO week 53: 31 December 2026 and 2 January 2027 are one week (2026-W53); 4 January 2027 starts 2027-W01")
    func isoWeek53() {
        let times = ["2026-12-27T12:00:00Z", "2026-12-31T12:00:00Z", "2027-01-02T12:00:00Z", "2027-01-04T12:00:00Z"]
        #expect(Self.names(RetentionPolicy(keepWeekly: 2), times, zone: "UTC") == ["2027-01-02T12:00:00Z", "2027-01-04T12:00:00Z"])
        #expect(Self.names(RetentionPolicy(keepWeekly: 3), times, zone: "UTC") == ["2026-12-27T12:00:00Z", "2027-01-02T12:00:00Z", "2027-01-04T12:00:00Z"])
        // By calendar years, 2026-12-31 and 2027-01-02 are two years.
        #expect(Self.names(RetentionPolicy(keepYearly: 2), times, zone: "UTC") == ["2026-12-31T12:00:00Z", "2027-01-04T12:00:00Z"])
    }

    @Test("keepLast with the other tiers: a backup kept by several tiers counts in each; the counts say what each tier holds")
    func counts() {
        let times = (0..<10).map { day in Date(timeIntervalSince1970: 1_767_225_600 + Double(day) * 86_400) }  // 2026-01-01, daily
        let candidates = times.enumerated().map { Retention.Candidate(name: "b\($0.offset)", time: $0.element) }
        let decision = Retention.apply(RetentionPolicy(keepLast: 2, keepDaily: 3, keepMonthly: 2), to: candidates, timeZone: TimeZone(identifier: "UTC")!)
        #expect(decision.kept == ["b9", "b8", "b7"], "one month only: the newest")
        #expect(decision.retained == RetainedBackups(last: 2, daily: 3, monthly: 1, total: 3))
    }
}

/// RFC 3339 for test literals.
enum RFC3339Reader {
    static func date(_ text: String) -> Date { KubeTime.parse(text)! }
}
