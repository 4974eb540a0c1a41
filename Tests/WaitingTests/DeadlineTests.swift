import Synchronization
import Testing
import TestSupport
import Waiting

/// The bounds' logic on a manual clock: when a deadline fires, what an idle timeout counts as
/// progress. Nothing here waits on the wall clock, so a loaded machine cannot decide them.
@Suite("Deadlines and idle timeouts on a manual clock")
struct DeadlineTests {
    @Test("withDeadline: the operation is cancelled at the limit, not before, and the error names it")
    func deadlineFiresAtTheLimit() async throws {
        let clock = ManualClock()
        let cancelled = Locked(false)
        async let outcome: DeadlineExceeded? = TestHelpers.caught(DeadlineExceeded.self) {
            try await withDeadline(.seconds(5), "reading the body of GET /x", clock: clock) {
                try await withTaskCancellationHandler { try await waitUntilCancelled() } onCancel: { cancelled.withLock { $0 = true } }
            }
        }
        try await clock.waitForSleepers(1)
        clock.advance(by: .seconds(5) - .milliseconds(1))
        try await clock.waitForSleepers(at: [.seconds(5)])  // the timer still waits: not before the limit
        #expect(!cancelled.withLock { $0 })
        clock.advance(by: .milliseconds(1))
        let error = await outcome
        #expect(error?.operation == "reading the body of GET /x")
        #expect(error?.limit == .seconds(5))
        #expect(error?.description == "reading the body of GET /x did not finish within 5.0 seconds")
        #expect(cancelled.withLock { $0 }, "the operation was cancelled")
    }

    @Test("SlicingClock: a long sleep waits on the base clock a slice at a time and ends at its deadline; a jump past it ends it; cancelling ends it with CancellationError")
    func slicingClock() async throws {
        let base = ManualClock()
        let clock = SlicingClock(base, slice: .seconds(10))
        let woke = Locked(false)
        let sleeper = Task {
            try await clock.sleep(until: base.now.advanced(by: .seconds(25)))
            woke.withLock { $0 = true }
        }
        try await base.waitForSleepers(at: [.seconds(10)])  // one slice, not the whole 25 s
        base.advance(by: .seconds(10))
        try await base.waitForSleepers(at: [.seconds(20)])
        base.advance(by: .seconds(4))  // within a slice: still asleep
        try await base.waitForSleepers(at: [.seconds(20)])
        #expect(!woke.withLock { $0 })
        base.advance(by: .seconds(6))
        try await base.waitForSleepers(at: [.seconds(25)])  // the last slice ends at the deadline
        base.advance(by: .seconds(5))
        try await sleeper.value
        #expect(woke.withLock { $0 })
        #expect(base.sleepers == 0)

        // A deadline already past returns at once; a clock jump past the deadline ends the sleep.
        try await clock.sleep(until: base.now)
        let jumped = Task { try await clock.sleep(until: base.now.advanced(by: .seconds(3600))) }
        try await base.waitForSleepers(at: [.seconds(35)])  // now is 25 s
        base.advance(by: .seconds(7200))
        try await jumped.value

        // Cancelled: the error comes through.
        let cancelled = Task { try await clock.sleep(until: base.now.advanced(by: .seconds(3600))) }
        try await base.waitForSleepers(1)
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
    }

    @Test("withDeadline: an operation that finishes in time returns its value and cancels the timer")
    func deadlineNotReached() async throws {
        let clock = ManualClock()
        let value = try await withDeadline(.seconds(5), "quick", clock: clock) { 42 }
        #expect(value == 42)
        #expect(clock.sleepers == 0, "the timer task was cancelled with the group")
    }

    @Test("withDeadline: the operation's own error passes through; cancelling the caller is a CancellationError, not DeadlineExceeded")
    func deadlineErrors() async throws {
        struct Refused: Error {}
        let clock = ManualClock()
        await #expect(throws: Refused.self) { try await withDeadline(.seconds(5), "refused", clock: clock) { throw Refused() } }
        let task = Task { try await withDeadline(.seconds(5), "hangs", clock: clock) { try await waitUntilCancelled() } }
        try await clock.waitForSleepers(1)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test("withIdleTimeout: progress moves the limit on; quiet for the whole limit fails with the error made of the idle time")
    func idleTimeout() async throws {
        struct Idle: Error { var idleFor: Duration }
        let clock = ManualClock()
        let progress = Locked<(@Sendable () -> Void)?>(nil)
        async let outcome: Idle? = TestHelpers.caught(Idle.self) {
            try await withIdleTimeout(.seconds(120), clock: clock, idle: { Idle(idleFor: $0) }) { progressed in
                progress.withLock { $0 = progressed }
                try await waitUntilCancelled()
            }
        }
        try await clock.waitForSleepers(1)
        try await eventually("the body to start") { progress.withLock { $0 } != nil }
        let progressed = try #require(progress.withLock { $0 })
        for _ in 0..<5 {  // a chunk every 100 s keeps it alive for 500 s
            clock.advance(by: .seconds(100))
            progressed()
        }
        // The watchdog slept until 120 s, found progress at 100 s, and sleeps until 220 s, ...
        try await clock.waitForSleepers(1)
        clock.advance(by: .seconds(119))
        try await clock.waitForSleepers(1)
        #expect(clock.sleepers == 1, "119 s quiet: still waiting")
        clock.advance(by: .seconds(1))
        let idle = await outcome
        #expect(idle?.idleFor == .seconds(120))
    }

    @Test("withIdleTimeout: the body's value is returned")
    func idleTimeoutValue() async throws {
        let value = try await withIdleTimeout(.seconds(1), clock: ManualClock(), idle: { _ in CancellationError() }) { progressed in
            progressed()
            return "done"
        }
        #expect(value == "done")
    }

    @Test("Backoff: doubles from the base, capped, for any retry count (negative, huge)")
    func backoff() {
        let backoff = Backoff(base: .seconds(10), cap: .seconds(600))
        #expect(backoff.delay(retry: -1) == .seconds(10))
        #expect(backoff.delay(retry: 0) == .seconds(10))
        #expect(backoff.delay(retry: 1) == .seconds(20))
        #expect(backoff.delay(retry: 5) == .seconds(320))
        #expect(backoff.delay(retry: 6) == .seconds(600))
        #expect(backoff.delay(retry: .max) == .seconds(600))
        let jittered = Backoff(base: .seconds(10), cap: .seconds(600), jitter: true)
        for retry in 0..<10 { #expect((.zero ... backoff.delay(retry: retry)).contains(jittered.delay(retry: retry))) }
    }
}
