import ArgumentParser
import Cron
import Foundation
import Timestamps

/// `next-runs`: the offline answer to "when will this expression run?", computed by the same
/// code the schedule controller uses.
struct NextRunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next-runs",
        abstract: "Print the next run times of a cron expression, in UTC.",
        discussion: """
            Runs are printed one per line as RFC 3339 in UTC, strictly after --from. The expression \
            is read in --time-zone (or its own CRON_TZ= prefix), exactly as a TalosEtcdBackupSchedule \
            reads spec.schedule with spec.timeZone.

            Exit status: 0 on success, 1 for an invalid expression or time zone, 2 when the \
            expression never runs (for example '0 0 30 2 *').
            """
    )

    @Option(name: .long, help: "IANA time zone the expression is read in (default: UTC).")
    var timeZone: String?

    @Option(name: .long, help: "Start after this RFC 3339 time, e.g. 2026-03-08T00:00:00Z (default: now).")
    var from: String?

    @Option(name: .long, help: "How many run times to print.")
    var count: Int = 5

    @Argument(help: "Cron expression, e.g. '0 2 * * *'.")
    var expression: String

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, not \(count)") }
    }

    func run() throws {
        var start = Date()
        if let from {
            guard let parsed = RFC3339.parse(from) else {
                throw ValidationError("--from \"\(from)\" is not an RFC 3339 time such as 2026-03-08T00:00:00Z")
            }
            start = parsed
        }
        let schedule: CronSchedule
        do {
            schedule = try CronSchedule(expression, timeZone: timeZone)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let runs = schedule.nextRuns(after: start, count: count)
        for run in runs { print(RFC3339.format(run)) }
        if runs.isEmpty {
            printError("error: \"\(expression)\" never runs: no date matches it")
            throw ExitCode(2)
        }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
