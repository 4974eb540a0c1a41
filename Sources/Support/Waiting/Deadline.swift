import Synchronization

/// Thrown by ``withDeadline(_:_:clock:operation:)`` when the operation did not finish in time.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    /// What was being waited for ("reading the body of GET /apis/...").
    public var operation: String
    public var limit: Duration

    public init(operation: String, limit: Duration) {
        self.operation = operation
        self.limit = limit
    }

    public var description: String { "\(operation) did not finish within \(limit)" }
}

/// Runs `operation`, cancelling it and throwing ``DeadlineExceeded`` if it has not finished
/// after `limit` on `clock`. The one bound for awaits that have no deadline of their own (a
/// response body, a stream's next element, a lease renewal, a release on shutdown): nothing
/// waits forever.
///
/// The operation must honour cancellation (every NIO-based read here does); the call returns
/// when it has ended, so nothing outlives it. `clock` is the real one in production; tests
/// pass a manual clock to check the bound's logic without waiting on the wall clock.
public func withDeadline<T: Sendable>(
    _ limit: Duration, _ operation: @autoclosure () -> String, clock: any Clock<Duration> = TimerClock(),
    operation body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let description = operation()
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await clock.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        guard let value = first else {
            try Task.checkCancellation()
            throw DeadlineExceeded(operation: description, limit: limit)
        }
        return value
    }
}

/// Runs `body`, which reports progress by calling the closure it is given; when no progress
/// has been reported for `limit` on `clock`, `body` is cancelled and the error `idle` makes of
/// the idle time is thrown. For streams that may go quiet without closing: a watch behind a
/// proxy that stopped forwarding, a snapshot stream that stopped sending.
///
/// Measured on progress, not on wall time alone: what counts is the time since the stream last
/// moved, so a slow stream that keeps moving is never cut, and a process that got no CPU for a
/// while loses nothing unless that pause alone outlasts `limit`.
public func withIdleTimeout<T: Sendable>(
    _ limit: Duration, clock: any Clock<Duration> = TimerClock(), idle: @escaping @Sendable (_ idleFor: Duration) -> any Error,
    _ body: @escaping @Sendable (_ progressed: @escaping @Sendable () -> Void) async throws -> T
) async throws -> T {
    let time = ElapsedTime(clock)
    let lastProgress = LastProgress(time: time)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            // Sleeps until the time the last progress runs out, not in small steps: a quiet
            // stream costs one wakeup per `limit` (per 10 s slice on ``TimerClock``).
            while true {
                try await time.sleep(until: lastProgress.instant + limit)
                // Let tasks that were ready when the sleep ended report their progress first.
                await Task.yield()
                let idleFor = time.now - lastProgress.instant
                if idleFor >= limit { throw idle(idleFor) }
            }
        }
        group.addTask { try await body { lastProgress.touch() } }
        defer { group.cancelAll() }
        while let result = try await group.next() {
            if let value = result { return value }
        }
        throw CancellationError()  // unreachable: the watchdog ends only by throwing
    }
}

/// When a stream last moved, on the idle timeout's clock.
private final class LastProgress: Sendable {
    private let time: ElapsedTime
    private let state: Mutex<Duration>
    init(time: ElapsedTime) {
        self.time = time
        self.state = Mutex(time.now)
    }
    var instant: Duration { state.withLock { $0 } }
    func touch() {
        state.withLock { $0 = max($0, time.now) }
    }
}

/// A clock held as a value whatever its type: its time as the span since this value was made,
/// so a type can keep `any Clock<Duration>` (the real clock in production, a manual one in
/// tests) and still measure between two moments.
public struct ElapsedTime: Sendable {
    private let read: @Sendable () -> Duration
    private let waitUntil: @Sendable (Duration) async throws -> Void

    public init<C: Clock<Duration>>(_ clock: C) {
        let start = clock.now
        read = { start.duration(to: clock.now) }
        waitUntil = { try await clock.sleep(until: start.advanced(by: $0), tolerance: nil) }
    }

    /// The time since this value was made.
    public var now: Duration { read() }

    public func sleep(for duration: Duration) async throws { try await waitUntil(now + duration) }

    /// Sleeps until ``now`` reaches `deadline` (at once when it has).
    public func sleep(until deadline: Duration) async throws { try await waitUntil(deadline) }
}
