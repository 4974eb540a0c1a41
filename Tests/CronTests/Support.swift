import Cron
import Foundation
import Testing
import Timestamps

/// The next `count` runs of `expression` after `from`, as RFC 3339 strings.
func runs(_ expression: String, timeZone: String? = nil, from: String, count: Int = 5) throws -> [String] {
    let schedule = try CronSchedule(expression, timeZone: timeZone)
    let start = try #require(RFC3339.parse(from), "bad test timestamp \(from)")
    return schedule.nextRuns(after: start, count: count).map(RFC3339.format)
}

/// The error parsing `expression` (in `timeZone`) throws, or nil when it parses.
func parseError(_ expression: String, timeZone: String? = nil) -> CronError? {
    do {
        _ = try CronSchedule(expression, timeZone: timeZone)
        return nil
    } catch {
        return error
    }
}
