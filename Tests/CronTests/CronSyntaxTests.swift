import Cron
import Foundation
import Testing

@Suite("Cron syntax")
struct CronSyntaxTests {
    @Test("the seed's examples")
    func seedExamples() throws {
        let from = "2026-11-26T05:38:56Z"  // a Thursday
        #expect(try runs("0 2 * * *", from: from, count: 3)
            == ["2026-11-27T02:00:00Z", "2026-11-28T02:00:00Z", "2026-11-29T02:00:00Z"])
        #expect(try runs("0 */6 * * *", from: from, count: 4)
            == ["2026-11-26T06:00:00Z", "2026-11-26T12:00:00Z", "2026-11-26T18:00:00Z", "2026-11-27T00:00:00Z"])
        #expect(try runs("0 0 * * 0", from: from, count: 2) == ["2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z"])
        #expect(try runs("0 0 1 * *", from: from, count: 3)
            == ["2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"])
        #expect(try runs("*/15 * * * *", from: from, count: 4)
            == ["2026-11-26T05:45:00Z", "2026-11-26T06:00:00Z", "2026-11-26T06:15:00Z", "2026-11-26T06:30:00Z"])
    }

    @Test("runs are strictly after the start, at second 0")
    func strictlyAfter() throws {
        #expect(try runs("30 6 * * *", from: "2026-03-09T06:30:00Z", count: 1) == ["2026-03-10T06:30:00Z"])
        #expect(try runs("30 6 * * *", from: "2026-03-09T06:29:59Z", count: 1) == ["2026-03-09T06:30:00Z"])
        #expect(try runs("* * * * *", from: "2026-03-09T06:30:00.5Z", count: 2)
            == ["2026-03-09T06:31:00Z", "2026-03-09T06:32:00Z"])
    }

    @Test("star and question mark")
    func starAndQuestionMark() throws {
        #expect(try runs("* * * * *", from: "2026-12-31T23:58:30Z", count: 3)
            == ["2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z", "2027-01-01T00:01:00Z"])
        #expect(try runs("0 12 ? * ?", from: "2026-01-01T00:00:00Z", count: 2)
            == ["2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z"])
    }

    @Test("values, ranges, lists and steps")
    func rangesListsSteps() throws {
        #expect(try runs("5,10-12 3 * * *", from: "2026-01-01T00:00:00Z", count: 5)
            == ["2026-01-01T03:05:00Z", "2026-01-01T03:10:00Z", "2026-01-01T03:11:00Z",
                "2026-01-01T03:12:00Z", "2026-01-02T03:05:00Z"])
        #expect(try runs("10-30/10 1 * * *", from: "2026-01-01T00:00:00Z", count: 4)
            == ["2026-01-01T01:10:00Z", "2026-01-01T01:20:00Z", "2026-01-01T01:30:00Z", "2026-01-02T01:10:00Z"])
        // `a/n` is `a-max/n`.
        #expect(try runs("50/5 1 * * *", from: "2026-01-01T00:00:00Z", count: 3)
            == ["2026-01-01T01:50:00Z", "2026-01-01T01:55:00Z", "2026-01-02T01:50:00Z"])
        #expect(try runs("0 */8 * * *", from: "2026-01-01T00:00:00Z", count: 3)
            == ["2026-01-01T08:00:00Z", "2026-01-01T16:00:00Z", "2026-01-02T00:00:00Z"])
        // A step larger than the range matches its start only.
        #expect(try runs("*/90 5 * * *", from: "2026-01-01T00:00:00Z", count: 2)
            == ["2026-01-01T05:00:00Z", "2026-01-02T05:00:00Z"])
        #expect(try runs("0 0 1 */5 *", from: "2026-01-15T00:00:00Z", count: 3)
            == ["2026-06-01T00:00:00Z", "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z"])
        #expect(try runs("0 0 1,15 * *", from: "2026-01-15T00:00:00Z", count: 3)
            == ["2026-02-01T00:00:00Z", "2026-02-15T00:00:00Z", "2026-03-01T00:00:00Z"])
        #expect(try runs("0 0 5 2-4,11 *", from: "2026-01-01T00:00:00Z", count: 5)
            == ["2026-02-05T00:00:00Z", "2026-03-05T00:00:00Z", "2026-04-05T00:00:00Z",
                "2026-11-05T00:00:00Z", "2027-02-05T00:00:00Z"])
    }

    @Test("month and weekday names, any case, in ranges and lists")
    func names() throws {
        #expect(try runs("0 0 1 JAN,jul *", from: "2026-02-01T00:00:00Z", count: 2)
            == ["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"])
        #expect(try runs("0 9 * * Mon-fri", from: "2026-11-27T10:00:00Z", count: 3)  // Friday after 9
            == ["2026-11-30T09:00:00Z", "2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z"])
        #expect(try runs("0 0 1 mar-may/2 *", from: "2026-01-01T00:00:00Z", count: 2)
            == ["2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"])
        #expect(try runs("0 0 * * SAT,sun", from: "2026-11-26T00:00:00Z", count: 3)
            == ["2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z", "2026-12-05T00:00:00Z"])
    }

    @Test("descriptors", arguments: [
        ("@yearly", "2027-01-01T00:00:00Z"), ("@annually", "2027-01-01T00:00:00Z"),
        ("@monthly", "2026-12-01T00:00:00Z"), ("@weekly", "2026-11-29T00:00:00Z"),
        ("@daily", "2026-11-27T00:00:00Z"), ("@midnight", "2026-11-27T00:00:00Z"),
        ("@hourly", "2026-11-26T06:00:00Z"),
    ])
    func descriptors(descriptor: String, next: String) throws {
        #expect(try runs(descriptor, from: "2026-11-26T05:38:56Z", count: 1) == [next])
    }

    @Test("CRON_TZ= and TZ= prefixes set the zone")
    func timeZonePrefixes() throws {
        #expect(try runs("CRON_TZ=Europe/Berlin 0 2 * * *", from: "2026-11-26T00:00:00Z", count: 1)
            == ["2026-11-26T01:00:00Z"])
        #expect(try runs("TZ=Asia/Tokyo 0 2 * * *", from: "2026-11-26T00:00:00Z", count: 1)
            == ["2026-11-26T17:00:00Z"])
        #expect(try runs("CRON_TZ=America/New_York @daily", from: "2026-11-26T00:00:00Z", count: 1)
            == ["2026-11-26T05:00:00Z"])
        #expect(try runs("0 2 * * *", timeZone: "Europe/Berlin", from: "2026-11-26T00:00:00Z", count: 1)
            == ["2026-11-26T01:00:00Z"])
        #expect(try CronSchedule("TZ=UTC * * * * *").timeZone.secondsFromGMT() == 0)
    }

    @Test("surrounding and repeated white space between fields is ignored")
    func whiteSpace() throws {
        #expect(try runs("  0\t2  *   * *  ", from: "2026-11-26T00:00:00Z", count: 1) == ["2026-11-26T02:00:00Z"])
    }
}

@Suite("Cron errors name the field and the value")
struct CronErrorTests {
    @Test("each error", arguments: [
        ("", CronError.empty),
        ("   ", .empty),
        ("* * * *", .wrongFieldCount(found: 4, expression: "* * * *")),
        ("* * * * * *", .wrongFieldCount(found: 6, expression: "* * * * * *")),
        ("60 * * * *", .invalidField(field: .minute, value: "60", reason: "60 is out of range 0-59")),
        ("* 24 * * *", .invalidField(field: .hour, value: "24", reason: "24 is out of range 0-23")),
        ("* * 0 * *", .invalidField(field: .dayOfMonth, value: "0", reason: "0 is out of range 1-31")),
        ("* * 32 * *", .invalidField(field: .dayOfMonth, value: "32", reason: "32 is out of range 1-31")),
        ("* * * 13 *", .invalidField(field: .month, value: "13", reason: "13 is out of range 1-12")),
        ("* * * 0 *", .invalidField(field: .month, value: "0", reason: "0 is out of range 1-12")),
        ("* * * * 8", .invalidField(field: .dayOfWeek, value: "8", reason: "8 is out of range 0-6")),
        ("* * * * 7", .invalidField(field: .dayOfWeek, value: "7", reason: "7 is out of range 0-6")),
        ("* * * * 6-7", .invalidField(field: .dayOfWeek, value: "6-7", reason: "7 is out of range 0-6")),
        ("* * * foo *", .invalidField(field: .month, value: "foo", reason: "\"foo\" is not a number or a name (jan-dec)")),
        ("* * * * monday", .invalidField(field: .dayOfWeek, value: "monday", reason: "\"monday\" is not a number or a name (sun-sat)")),
        ("mon * * * *", .invalidField(field: .minute, value: "mon", reason: "\"mon\" is not a number")),
        ("*/0 * * * *", .invalidField(field: .minute, value: "*/0", reason: "step must be at least 1, not 0")),
        ("*/x * * * *", .invalidField(field: .minute, value: "*/x", reason: "step \"x\" is not a positive number")),
        ("*/-2 * * * *", .invalidField(field: .minute, value: "*/-2", reason: "step \"-2\" is not a positive number")),
        ("1/2/3 * * * *", .invalidField(field: .minute, value: "1/2/3", reason: "\"1/2/3\" has more than one \"/\"")),
        ("30-10 * * * *", .invalidField(field: .minute, value: "30-10", reason: "range \"30-10\" starts after it ends")),
        ("1-2-3 * * * *", .invalidField(field: .minute, value: "1-2-3", reason: "\"1-2-3\" has more than one \"-\"")),
        ("* * * * fri-mon", .invalidField(field: .dayOfWeek, value: "fri-mon", reason: "range \"fri-mon\" starts after it ends")),
        ("-5 * * * *", .invalidField(field: .minute, value: "-5", reason: "\"\" is not a number")),
        ("@every", .unknownDescriptor("@every")),
        ("@every 5", .invalidInterval(expression: "@every 5", reason: "\"5\" is not a duration such as 90s, 15m or 1h30m")),
        ("@every  5m", .invalidInterval(expression: "@every  5m", reason: "\" 5m\" is not a duration such as 90s, 15m or 1h30m")),
        ("@every 5x", .invalidInterval(expression: "@every 5x", reason: "\"5x\" is not a duration such as 90s, 15m or 1h30m")),
        ("@daily ", .unknownDescriptor("@daily ")),
        ("@reboot", .unknownDescriptor("@reboot")),
        ("@Daily", .unknownDescriptor("@Daily")),
        ("CRON_TZ=Europe/Berlin", .malformedTimeZonePrefix("CRON_TZ=Europe/Berlin")),
        ("CRON_TZ= 0 2 * * *", .malformedTimeZonePrefix("CRON_TZ=")),
        ("TZ=Mars/Olympus 0 2 * * *", .invalidTimeZone("Mars/Olympus")),
    ])
    func rejects(expression: String, expected: CronError) {
        #expect(parseError(expression) == expected)
    }

    @Test("the timeZone field: unknown zones, and a prefix together with a zone")
    func timeZoneField() {
        #expect(parseError("0 2 * * *", timeZone: "Europe/Berln") == .invalidTimeZone("Europe/Berln"))
        #expect(parseError("0 2 * * *", timeZone: "Local") == .invalidTimeZone("Local"))
        #expect(parseError("0 2 * * *", timeZone: "GMT+5") == .invalidTimeZone("GMT+5"))
        #expect(parseError("0 2 * * *", timeZone: "utc") == .invalidTimeZone("utc"))
        #expect(parseError("0 2 * * *", timeZone: "") == .invalidTimeZone(""))
        #expect(parseError("CRON_TZ=UTC 0 2 * * *", timeZone: "UTC")
            == .conflictingTimeZones(prefix: "UTC", timeZone: "UTC"))
        for accepted in ["UTC", "Etc/UTC", "US/Eastern", "Asia/Calcutta", "America/Argentina/Buenos_Aires", "Etc/GMT+5"] {
            #expect(parseError("0 2 * * *", timeZone: accepted) == nil, "\(accepted)")
        }
    }

    @Test("messages say which field and what is wrong")
    func messages() {
        #expect(parseError("0 25 * * *")?.description == "hour field \"25\": 25 is out of range 0-23")
        #expect(parseError("0 2 * *")?.description
            == "schedule \"0 2 * *\" has 4 fields; expected five: minute hour day-of-month month day-of-week")
        #expect(parseError("0 2 * * *", timeZone: "Nowhere")?.description
            == "unknown time zone \"Nowhere\"; expected an IANA name such as UTC or Europe/Berlin")
        #expect(parseError("TZ=UTC 0 2 * * *", timeZone: "UTC")?.description
            == "schedule carries time zone prefix \"UTC\" and timeZone is \"UTC\"; set only one of them")
    }
}
