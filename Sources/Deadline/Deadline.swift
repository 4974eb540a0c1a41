import Synchronization

/// Thrown by ``withDeadline(_:_:operation:)`` when the operation did not finish in time.
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
/// after `limit`. The one bound for awaits that have no deadline of their own (a response body,
/// a stream's next element, a lease renewal, a release on shutdown): nothing waits forever.
///
/// The operation must honour cancellation (every NIO-based read here does); the call returns
/// when it has ended, so nothing outlives it.
public func withDeadline<T: Sendable>(
    _ limit: Duration, _ operation: @autoclosure () -> String,
    operation body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let description = operation()
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
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
/// has been reported for `limit`, `body` is cancelled and the error `idle` makes of the idle
/// time is thrown. For streams that may go quiet without closing: a watch behind a proxy that
/// stopped forwarding, a snapshot stream that stopped sending.
public func withIdleTimeout<T: Sendable>(
    _ limit: Duration, idle: @escaping @Sendable (_ idleFor: Duration) -> any Error,
    _ body: @escaping @Sendable (_ progressed: @escaping @Sendable () -> Void) async throws -> T
) async throws -> T {
    let lastProgress = LastProgress()
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            // Sleeps until the time the last progress runs out, not in small steps: a quiet
            // stream costs one wakeup per `limit`.
            while true {
                try await Task.sleep(until: lastProgress.instant + limit, clock: .continuous)
                let idleFor = ContinuousClock.now - lastProgress.instant
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

/// When a stream last moved.
private final class LastProgress: Sendable {
    private let state = Mutex(ContinuousClock.now)
    var instant: ContinuousClock.Instant { state.withLock { $0 } }
    func touch() { state.withLock { $0 = .now } }
}
