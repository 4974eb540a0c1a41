import Cron
import Foundation

// Next-run computation per call, for a sparse and a dense expression, in UTC and in a zone
// with daylight saving time. Run with: swift run -c release CronBenchmark
let cases: [(String, String)] = [
    ("0 0 29 2 1", "UTC"), ("* * * * *", "UTC"), ("0 0 29 2 *", "UTC"),
    ("0 0 29 2 1", "America/New_York"), ("* * * * *", "America/New_York"), ("0 0 29 2 *", "America/New_York"),
]
let clock = ContinuousClock()
let iterations = 200_000
print("expression           zone              ns/call   (\(iterations) calls, each from a different start)")
for (expression, zone) in cases {
    let schedule = try CronSchedule(expression, timeZone: zone)
    var start = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z
    var checksum = 0.0
    _ = schedule.nextRun(after: start)  // warm up the zone's caches
    let elapsed = clock.measure {
        for _ in 0..<iterations {
            checksum += schedule.nextRun(after: start)!.timeIntervalSince1970
            start += 3_607  // a little over an hour, so starts fall on every minute and month
        }
    }
    let perCall = Double(elapsed.components.seconds) * 1e9 / Double(iterations)
        + Double(elapsed.components.attoseconds) / 1e9 / Double(iterations)
    let padded = expression.padding(toLength: 20, withPad: " ", startingAt: 0)
    let paddedZone = zone.padding(toLength: 17, withPad: " ", startingAt: 0)
    print("\(padded) \(paddedZone) \(String(format: "%8.0f", perCall))   (sink \(Int(checksum) % 1000))")
}
