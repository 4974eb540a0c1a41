@testable import BackupOperator
import BackupResolution
import Foundation
@testable import SnapshotPipeline
import Testing
import TestSupport

/// The snapshot stall watchdog's logic on a manual clock: a stream that moves its floor
/// (1 MiB) in every window, however slowly, is never cut; one quiet for the whole window fails
/// the attempt with SnapshotStalled, and so does one that trickles below the floor.
@Suite("Stall watchdog on a manual clock")
struct StallWatchdogTests {
    /// Runs a watchdog of 120 s with a body that hands out its progress closure and waits;
    /// returns the closure and the outcome to await.
    private func started(_ clock: ManualClock) async throws -> (moved: @Sendable (Int) -> Void, outcome: Task<PipelineFailure?, Never>) {
        let progress = Locked<(@Sendable (Int) -> Void)?>(nil)
        let outcome = Task {
            await TestHelpers.caught(PipelineFailure.self) {
                _ = try await StallWatchdog(limit: .seconds(120), clock: clock).run { moved in
                    progress.withLock { $0 = moved }
                    try await waitUntilCancelled()
                }
            }
        }
        try await eventually("the transfer to start") { progress.withLock { $0 } != nil }
        return (try #require(progress.withLock { $0 }), outcome)
    }

    @Test("1 MiB every 119 s keeps a transfer alive; 120 s without data fails it with SnapshotStalled, naming both times")
    func stalls() async throws {
        let clock = ManualClock()
        let (moved, outcome) = try await started(clock)
        for _ in 0..<10 {  // 1,190 s of a slow stream
            try await clock.waitForSleepers(1)
            clock.advance(by: .seconds(119))
            moved(1 << 20)
        }
        // The last MiB came at 1,190 s: at 1,309 s the watchdog still waits (until 1,310 s).
        clock.advance(by: .seconds(119))
        try await clock.waitForSleepers(at: [.seconds(1_310)])
        clock.advance(by: .seconds(1))
        let failure = await outcome.value
        #expect(failure?.kind == .stalled)
        #expect(failure.map { BackupFailure.classify($0).reason } == BackupFailure.Reason.snapshotStalled)
        #expect(failure?.message.contains("no snapshot data for 120 s (limit 120 s)") == true, "\(String(describing: failure))")
    }

    @Test("a stream that sends 1 KiB every 10 s moves, but below the floor: it is cut after 120 s with SnapshotStalled naming what came")
    func trickles() async throws {
        let clock = ManualClock()
        let (moved, outcome) = try await started(clock)
        for _ in 0..<11 {
            try await clock.waitForSleepers(at: [.seconds(120)])
            clock.advance(by: .seconds(10))
            moved(1024)
        }
        #expect(clock.sleepers == 1, "still running at 110 s")
        clock.advance(by: .seconds(10))
        let failure = await outcome.value
        #expect(failure?.kind == .stalled)
        #expect(failure.map { BackupFailure.classify($0).reason } == BackupFailure.Reason.snapshotStalled)
        #expect(failure?.message.contains("only 11264 bytes of snapshot data in 120 s (the floor is 1048576 bytes per 120 s)") == true,
                "\(String(describing: failure))")
    }

    @Test("chunk sizes near Int.max neither trap nor wrap: the count saturates and counts as progress")
    func hugeChunks() async throws {
        let clock = ManualClock()
        let (moved, outcome) = try await started(clock)
        try await clock.waitForSleepers(at: [.seconds(120)])
        clock.advance(by: .seconds(119))
        moved(1)
        moved(Int.max)  // 1 + Int.max saturates at Int64.max: progress at 119 s
        clock.advance(by: .seconds(1))
        try await clock.waitForSleepers(at: [.seconds(239)])
        clock.advance(by: .seconds(119))
        let failure = await outcome.value
        #expect(failure?.message.contains("no snapshot data for 120 s") == true, "\(String(describing: failure))")
    }
}
