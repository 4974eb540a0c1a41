import Cron
import Foundation
import Testing
import Timestamps

/// Cases where robfig/cron v3 (the Kubernetes CronJob's parser and scheduler) differs from
/// other cron implementations, pinned with the values robfig's rules give (its `getRange`
/// star bit, `dayMatches`, `ConstantDelaySchedule`); docs/design.md, Cron expressions.
@Suite("Cron matches robfig/cron v3")
struct CronRobfigParityTests {
    // 2026-11-27 is a Friday; 2026-11-30 a Monday.
    let from = "2026-11-27T12:00:00Z"

    @Test("a day field with a step above 1 is restricted: odd days OR Mondays")
    func stepRestrictsDayOfMonth() throws {
        #expect(try runs("0 0 */2 * 1", from: from, count: 5)
            == ["2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z",
                "2026-12-03T00:00:00Z", "2026-12-05T00:00:00Z"])
        #expect(try runs("0 0 ?/2 * 1", from: from, count: 2) == ["2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z"])
        // Day-of-week with a step, day-of-month a value: the 1st OR Sun/Tue/Thu/Sat.
        #expect(try runs("0 0 1 * */2", from: from, count: 4)
            == ["2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z", "2026-12-01T00:00:00Z", "2026-12-03T00:00:00Z"])
    }

    @Test("a step of 1, or a star anywhere in the list, keeps a day field unrestricted: Mondays only")
    func stepOfOneKeepsStar() throws {
        let mondays = ["2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"]
        #expect(try runs("0 0 */1 * 1", from: from, count: 2) == mondays)
        #expect(try runs("0 0 *,1 * 1", from: from, count: 2) == mondays)
        #expect(try runs("0 0 * * */2", from: from, count: 3)
            == ["2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z", "2026-12-01T00:00:00Z"])
    }

    @Test("what Go's Atoi and robfig's splitting accept")
    func lenientForms() throws {
        #expect(try runs("+5 0 * * *", from: from, count: 1) == ["2026-11-28T00:05:00Z"])
        #expect(try runs("*/+20 13 * * *", from: from, count: 3)
            == ["2026-11-27T13:00:00Z", "2026-11-27T13:20:00Z", "2026-11-27T13:40:00Z"])
        #expect(try runs("05 13 * * *", from: from, count: 1) == ["2026-11-27T13:05:00Z"])
        // `*` followed by `-n` is still the whole range; empty list elements are skipped.
        #expect(try runs("0 *-5 * * *", from: from, count: 2) == ["2026-11-27T13:00:00Z", "2026-11-27T14:00:00Z"])
        #expect(try runs("1,,2 13 * * *", from: from, count: 2) == ["2026-11-27T13:01:00Z", "2026-11-27T13:02:00Z"])
        // A field of commas only matches nothing: valid, but never runs.
        #expect(try runs(", 0 * * *", from: from, count: 1) == [])
    }

    @Test("@every counts from the anchor in whole seconds, at least one")
    func every() throws {
        let anchor = try #require(RFC3339.parse("2026-11-27T12:00:00.750Z"))
        let schedule = try CronSchedule("@every 1h30m")
        #expect(schedule.expression.interval == 5_400)
        // robfig's Next drops the fraction of a second, then adds the interval.
        #expect(schedule.nextRun(after: anchor).map(RFC3339.format) == "2026-11-27T13:30:00Z")
        let later = try #require(RFC3339.parse("2026-11-27T16:10:00Z"))
        #expect(schedule.nextRun(after: later, anchor: anchor).map(RFC3339.format) == "2026-11-27T16:30:00Z")
        #expect(schedule.lastRun(atOrBefore: later, after: anchor).map(RFC3339.format) == "2026-11-27T15:00:00Z")
        #expect(schedule.lastRun(atOrBefore: try #require(RFC3339.parse("2026-11-27T13:29:59Z")), after: anchor) == nil)
        #expect(try CronSchedule("@every 500ms").expression.interval == 1)
        #expect(try CronSchedule("@every 1.5s").expression.interval == 1)
        #expect(try CronSchedule("@every 2.5m").expression.interval == 150)
        #expect(try CronSchedule("@every 0").expression.interval == 1)
        #expect(try CronSchedule("@every 1h0m0s").expression.interval == 3_600)
        // The time zone does not move an interval.
        #expect(try CronSchedule("@every 1h", timeZone: "Asia/Tokyo").nextRun(after: later, anchor: anchor).map(RFC3339.format)
            == "2026-11-27T17:00:00Z")
    }

    @Test("@every at the limits of 64 bits: Go's largest duration is valid, one more is an error, nothing traps")
    func everyAtTheLimits() throws {
        // Go: time.ParseDuration accepts up to 2^63-1 ns (and -2^63); robfig's Every then takes
        // whole seconds, at least one.
        #expect(try CronSchedule("@every 9223372036854775807ns").expression.interval == 9_223_372_036)
        #expect(try CronSchedule("@every 9223372036.854775807s").expression.interval == 9_223_372_036)
        #expect(try CronSchedule("@every 2562047h").expression.interval == 2_562_047 * 3_600)
        #expect(try CronSchedule("@every -9223372036854775808ns").expression.interval == 1)
        #expect(try CronSchedule("@every 1.00000000000000000000000000001s").expression.interval == 1)
        for overflowing in ["9223372036854775808ns", "2562048h", "9223372036854775807ns1ns", "4611686018427387904ns4611686018427387904ns",
                            "99999999999999999999h", "-9223372036854775809ns", "9223372036.854775808s"] {
            #expect(throws: CronError.self, "\(overflowing)") { try CronSchedule("@every \(overflowing)") }
        }
        // The largest interval still gives runs (about 292 years apart).
        let anchor = try #require(RFC3339.parse("2026-11-27T12:00:00Z"))
        let schedule = try CronSchedule("@every 9223372036854775807ns")
        #expect(schedule.nextRun(after: anchor).map(RFC3339.format) == "2319-03-09T11:47:16Z")
        #expect(schedule.nextRun(after: anchor, anchor: anchor) == schedule.nextRun(after: anchor))
        #expect(schedule.lastRun(atOrBefore: anchor + 86_400, after: anchor) == nil)
    }
}
