import Cron
import Foundation

/// A schedule and a time zone as a tenant writes them (`<expression>\n<zone>`): parsing never
/// traps, and a schedule that parses answers its next runs, each strictly later than the last,
/// and its last run, in bounded time.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCron(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    let zone = parts.count > 1 ? String(parts[1]) : nil
    _ = try? CronExpression(parsing: String(parts[0]))
    guard let schedule = try? CronSchedule(String(parts[0]), timeZone: zone) else { return 0 }
    let from = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z
    var previous = from
    for run in schedule.nextRuns(after: from, count: 3) {
        precondition(run > previous, "runs must move forward")
        previous = run
    }
    _ = schedule.lastRun(atOrBefore: from, after: from - 86_400 * 366)
    return 0
}
