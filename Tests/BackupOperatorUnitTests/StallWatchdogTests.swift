@testable import BackupOperator
import Foundation
import TestSupport
import Testing

/// The snapshot stall watchdog's logic on a manual clock: a stream that keeps moving, however
/// slowly, is never cut; one quiet for the whole limit fails the attempt with SnapshotStalled.
@Suite("Stall watchdog on a manual clock")
struct StallWatchdogTests {
    @Test("a chunk every 119 s keeps a transfer alive; 120 s without one fails it with SnapshotStalled, naming both times")
    func stalls() async throws {
        let clock = ManualClock()
        let progress = Locked<(@Sendable () -> Void)?>(nil)
        async let outcome: BackupFailure? = TestHelpers.caught(BackupFailure.self) {
            _ = try await StallWatchdog(limit: .seconds(120), clock: clock).run { progressed in
                progress.withLock { $0 = progressed }
                try await waitUntilCancelled()
            }
        }
        try await eventually("the transfer to start") { progress.withLock { $0 } != nil }
        let progressed = try #require(progress.withLock { $0 })
        for _ in 0..<10 {  // 1,190 s of a slow stream
            try await clock.waitForSleepers(1)
            clock.advance(by: .seconds(119))
            progressed()
        }
        // The last chunk came at 1,190 s: at 1,309 s the watchdog still waits (until 1,310 s).
        clock.advance(by: .seconds(119))
        try await clock.waitForSleepers(at: [.seconds(1_310)])
        clock.advance(by: .seconds(1))
        let failure = await outcome
        #expect(failure?.reason == BackupFailure.Reason.snapshotStalled)
        #expect(failure?.message.contains("no snapshot data for 120 s (limit 120 s)") == true, "\(String(describing: failure))")
    }
}
