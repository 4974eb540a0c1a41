import Cron
import Foundation
import Testing
import Timestamps

@Suite("Cron calendar rules")
struct CronCalendarTests {
    @Test("29 February runs in leap years only, across the 2100 non-leap century")
    func leapDays() throws {
        #expect(try runs("0 0 29 2 *", from: "2026-11-26T00:00:00Z", count: 3)
            == ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"])
        #expect(try runs("0 0 29 2 *", from: "2096-03-01T00:00:00Z", count: 1) == ["2104-02-29T00:00:00Z"])
        #expect(try runs("0 0 29 2 *", from: "1999-03-01T00:00:00Z", count: 1) == ["2000-02-29T00:00:00Z"])
        #expect(try runs("0 0 L * *".replacingOccurrences(of: "L", with: "31"), from: "2026-01-31T00:00:00Z", count: 3)
            == ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"])
    }

    @Test("day-of-month and day-of-week: OR when both are restricted, AND when one is * or ? (step 1 at most)")
    func dayOfMonthOrDayOfWeek() throws {
        // 13th of the month OR any Friday (Vixie cron, robfig, CronJob).
        #expect(try runs("0 0 13 * 5", from: "2026-11-01T00:00:00Z", count: 4)
            == ["2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z", "2026-11-27T00:00:00Z"])
        #expect(try runs("0 0 1 * mon", from: "2026-11-26T00:00:00Z", count: 3)
            == ["2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z", "2026-12-07T00:00:00Z"])
        // `*/n` with n > 1 is restricted (robfig clears its star bit): odd days OR Mondays.
        #expect(try runs("0 0 */2 * 1", from: "2026-11-26T00:00:00Z", count: 3)
            == ["2026-11-27T00:00:00Z", "2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z"])
        #expect(try runs("0 0 1 * */3", from: "2026-11-26T00:00:00Z", count: 3)  // the 1st OR a Sun/Wed/Sat
            == ["2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z", "2026-12-01T00:00:00Z"])
        #expect(try runs("0 0 ? * 1", from: "2026-11-26T00:00:00Z", count: 1) == ["2026-11-30T00:00:00Z"])
        // The sparse benchmark expression: a Monday in February, or 29 February.
        #expect(try runs("0 0 29 2 1", from: "2027-03-01T00:00:00Z", count: 6)
            == ["2028-02-07T00:00:00Z", "2028-02-14T00:00:00Z", "2028-02-21T00:00:00Z",
                "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z", "2029-02-05T00:00:00Z"])
    }

    @Test("an expression that never matches has no next run, promptly", arguments: [
        "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 feb *",
    ])
    func noNextRun(expression: String) throws {
        let schedule = try CronSchedule(expression)
        #expect(!schedule.expression.canEverMatch)
        #expect(schedule.nextRun(after: Date()) == nil)
        #expect(schedule.nextRuns(after: Date(), count: 3).isEmpty)
    }

    @Test("the most recent run at or before a time, after a long outage")
    func lastRun() throws {
        let every = try CronSchedule("* * * * *")
        let start = try #require(RFC3339.parse("2025-01-01T00:00:00Z"))
        let now = try #require(RFC3339.parse("2026-11-26T05:38:56Z"))
        #expect(every.lastRun(atOrBefore: now, after: start).map(RFC3339.format) == "2026-11-26T05:38:00Z")
        let daily = try CronSchedule("0 2 * * *")
        #expect(daily.lastRun(atOrBefore: now, after: start).map(RFC3339.format) == "2026-11-26T02:00:00Z")
        #expect(daily.lastRun(atOrBefore: try #require(RFC3339.parse("2026-11-26T02:00:00Z")), after: start)
            .map(RFC3339.format) == "2026-11-26T02:00:00Z")
        #expect(daily.lastRun(atOrBefore: try #require(RFC3339.parse("2025-01-01T01:59:59Z")), after: start) == nil)
        let leap = try CronSchedule("0 0 29 2 *")
        #expect(leap.lastRun(atOrBefore: now, after: try #require(RFC3339.parse("2020-01-01T00:00:00Z")))
            .map(RFC3339.format) == "2024-02-29T00:00:00Z")
        // Agrees with walking forward one run at a time.
        let hourly = try CronSchedule("17 */3 * * 1-5")
        var walked: Date?
        var from = start
        while let next = hourly.nextRun(after: from), next <= now { walked = next; from = next }
        #expect(hourly.lastRun(atOrBefore: now, after: start) == walked)
    }
}

@Suite("Cron in time zones")
struct CronTimeZoneTests {
    @Test("America/New_York spring forward: 02:30 runs once at 03:00 EDT instead of being skipped")
    func newYorkSpringForward() throws {
        #expect(try runs("30 2 * * *", timeZone: "America/New_York", from: "2026-03-07T00:00:00Z", count: 3)
            == ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"])
        // Every 15 minutes: the four times in the gap collapse into the one run at 03:00 EDT.
        #expect(try runs("*/15 * * * *", timeZone: "America/New_York", from: "2026-03-08T06:40:00Z", count: 3)
            == ["2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z"])
        #expect(try runs("0 * * * *", timeZone: "America/New_York", from: "2026-03-08T05:30:00Z", count: 3)
            == ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"])
    }

    @Test("America/New_York fall back: 01:30 matches at both occurrences")
    func newYorkFallBack() throws {
        #expect(try runs("30 1 * * *", timeZone: "America/New_York", from: "2026-10-31T00:00:00Z", count: 4)
            == ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z"])
        #expect(try runs("0 * * * *", timeZone: "America/New_York", from: "2026-11-01T04:30:00Z", count: 4)
            == ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"])
        #expect(try runs("0 2 * * *", timeZone: "America/New_York", from: "2026-10-31T12:00:00Z", count: 2)
            == ["2026-11-01T07:00:00Z", "2026-11-02T07:00:00Z"])
    }

    @Test("Europe/Berlin spring forward and fall back")
    func berlin() throws {
        #expect(try runs("30 2 * * *", timeZone: "Europe/Berlin", from: "2026-03-28T00:00:00Z", count: 3)
            == ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"])
        #expect(try runs("30 2 * * *", timeZone: "Europe/Berlin", from: "2026-10-24T12:00:00Z", count: 3)
            == ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"])
        #expect(try runs("0 2 * * 0", timeZone: "Europe/Berlin", from: "2026-03-22T12:00:00Z", count: 2)
            == ["2026-03-29T01:00:00Z", "2026-04-05T00:00:00Z"])
    }

    @Test("Asia/Kolkata, half an hour off the hour")
    func kolkata() throws {
        #expect(try runs("0 2 * * *", timeZone: "Asia/Kolkata", from: "2026-11-26T00:00:00Z", count: 2)
            == ["2026-11-26T20:30:00Z", "2026-11-27T20:30:00Z"])
        #expect(try runs("0 0 1 * *", timeZone: "Asia/Kolkata", from: "2026-11-26T00:00:00Z", count: 1)
            == ["2026-11-30T18:30:00Z"])
    }

    @Test("Australia/Lord_Howe, whose clocks move by 30 minutes")
    func lordHowe() throws {
        // 4 October 2026: 02:00 +10:30 becomes 02:30 +11; 02:15 does not exist and runs at the jump.
        #expect(try runs("15 2 * * *", timeZone: "Australia/Lord_Howe", from: "2026-10-02T12:00:00Z", count: 3)
            == ["2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"])
        // 5 April 2026: 02:00 +11 becomes 01:30 +10:30; 01:45 happens twice.
        #expect(try runs("45 1 * * *", timeZone: "Australia/Lord_Howe", from: "2026-04-03T12:00:00Z", count: 3)
            == ["2026-04-03T14:45:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:15:00Z"])
    }

    @Test("Pacific/Chatham, 45 minutes off the hour")
    func chatham() throws {
        // 27 September 2026: 02:45 +12:45 becomes 03:45 +13:45; 03:00 runs at the jump.
        #expect(try runs("0 3 * * *", timeZone: "Pacific/Chatham", from: "2026-09-25T12:00:00Z", count: 3)
            == ["2026-09-25T14:15:00Z", "2026-09-26T14:00:00Z", "2026-09-27T13:15:00Z"])
        // 5 April 2026: 03:45 +13:45 becomes 02:45 +12:45; 03:00 happens twice.
        #expect(try runs("0 3 * * *", timeZone: "Pacific/Chatham", from: "2026-04-03T12:00:00Z", count: 3)
            == ["2026-04-03T13:15:00Z", "2026-04-04T13:15:00Z", "2026-04-04T14:15:00Z"])
    }

    @Test("a whole missing day (Pacific/Apia, 30 December 2011) still gets its daily run")
    func apiaSkippedDay() throws {
        #expect(try runs("0 2 * * *", timeZone: "Pacific/Apia", from: "2011-12-28T00:00:00Z", count: 3)
            == ["2011-12-28T12:00:00Z", "2011-12-29T12:00:00Z", "2011-12-30T10:00:00Z"])
    }
}

@Suite("RFC 3339")
struct RFC3339Tests {
    @Test("formats UTC with Z and second precision")
    func format() {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_773_037_800.9)) == "2026-03-09T06:30:00Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59Z")
    }

    @Test("parses offsets and fractions, rejects malformed text")
    func parse() {
        #expect(RFC3339.parse("2026-03-09T07:30:00+01:00")?.timeIntervalSince1970 == 1_773_037_800)
        #expect(RFC3339.parse("2026-03-09T01:30:00-05:00")?.timeIntervalSince1970 == 1_773_037_800)
        #expect(RFC3339.parse("2026-03-09T06:30:00.250Z")?.timeIntervalSince1970 == 1_773_037_800.25)
        #expect(RFC3339.parse("2026-03-09t06:30:00z")?.timeIntervalSince1970 == 1_773_037_800)
        for bad in ["", "2026-03-09", "2026-03-09T06:30:00", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z",
                    "2026-03-09T24:00:00Z", "2026-03-09T06:30:00Zjunk", "2026-03-09T06:30:00.Z", "yesterday"] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("HTTP dates (S3's Last-Modified): IMF-fixdate only, every field checked")
    func httpDates() {
        #expect(HTTPDate.parse("Fri, 27 Nov 2026 12:00:00 GMT")?.timeIntervalSince1970 == 1_795_780_800)
        #expect(HTTPDate.parse("Sun, 29 Feb 2028 23:59:59 GMT")?.timeIntervalSince1970 == 1_835_481_599)
        for bad in ["", "Fri, 27 Nov 2026 12:00:00 UTC", "Fri, 27 Nov 2026 12:00:00 GMT ", "Fri, 30 Feb 2026 12:00:00 GMT",
                    "Fri, 27 Xyz 2026 12:00:00 GMT", "Fri, 27 Nov 2026 24:00:00 GMT", "Fry, 27 Nov 2026 12:00:00 GMT",
                    "Friday, 27-Nov-26 12:00:00 GMT", "Fri, 2a Nov 2026 12:00:00 GMT"] {
            #expect(HTTPDate.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("an offset that moves a time out of the years 0000-9999 in UTC is refused, so every parsed time formats back (found by FuzzTimestamps)")
    func fourDigitYears() throws {
        #expect(RFC3339.parse("9999-12-31T23:59:59.999999999-23:59") == nil)
        #expect(RFC3339.parse("0000-01-01T00:00:00+00:01") == nil)
        #expect(RFC3339.parse("9999-12-31T23:59:59.99999999999Z") == nil, "a fraction that rounds into year 10000")
        let last = try #require(RFC3339.parse("9999-12-31T23:59:59Z"))
        #expect(RFC3339.format(last) == "9999-12-31T23:59:59Z")
        let first = try #require(RFC3339.parse("0000-01-01T00:00:00-23:59"))
        #expect(RFC3339.parse(RFC3339.format(first)) == first)
    }
}
