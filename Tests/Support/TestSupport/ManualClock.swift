import Synchronization
import Testing

/// A clock that moves only when a test moves it: time-dependent logic (deadlines, idle
/// timeouts, stall watchdogs, lease renewal) is tested on it without waiting on the wall
/// clock, so a loaded machine cannot make such a test fail.
///
/// Written here rather than taken from swift-clocks' `TestClock`: a test must know that the
/// code under test has reached its sleep before it advances the clock (``waitForSleepers(_:)``),
/// and `TestClock` only yields a number of times and hopes.
public final class ManualClock: Clock, Sendable {
    public typealias Duration = Swift.Duration

    /// An instant: the time advanced since the clock was made.
    public struct Instant: InstantProtocol, CustomStringConvertible {
        public var offset: Swift.Duration
        public func advanced(by duration: Swift.Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Swift.Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
        public var description: String { "\(offset)" }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var nextID = 0
        var sleepers: [Int: Sleeper] = [:]
        var cancelledEarly: Set<Int> = []
    }

    private let state = Mutex(State())

    public init() {}

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Swift.Duration { .zero }

    /// How many tasks are asleep on this clock now.
    public var sleepers: Int { state.withLock { $0.sleepers.count } }

    /// When the sleeping tasks wake, as times since the clock was made, earliest first.
    public var pendingDeadlines: [Swift.Duration] { state.withLock { $0.sleepers.values.map(\.deadline.offset).sorted() } }

    public func sleep(until deadline: Instant, tolerance: Swift.Duration? = nil) async throws {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Verdict { case wait, due, cancelled }
                let verdict = state.withLock { state -> Verdict in
                    if state.cancelledEarly.remove(id) != nil { return .cancelled }
                    if deadline <= state.now { return .due }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return .wait
                }
                switch verdict {
                case .wait: break
                case .due: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                if let sleeper = state.sleepers.removeValue(forKey: id) { return sleeper }
                state.cancelledEarly.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the time on by `duration` and wakes every sleeper whose deadline has come.
    public func advance(by duration: Swift.Duration) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let woken = state.sleepers.filter { $0.value.deadline <= now }
            for id in woken.keys { state.sleepers.removeValue(forKey: id) }
            return woken.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    /// Returns once at least `count` tasks sleep on this clock, so that advancing it reaches
    /// them; records an issue and throws when they never do (the bound is generous: it only
    /// keeps a broken test from hanging).
    public func waitForSleepers(_ count: Int = 1, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await eventually(timeout: .seconds(300), "\(count) task(s) asleep on the manual clock", sourceLocation: sourceLocation) {
            sleepers >= count
        }
    }

    /// Returns once the tasks asleep on this clock wake exactly at `deadlines` (times since the
    /// clock was made): the code under test has reached the sleeps the test expects, and no
    /// other. Records an issue and throws when it never does.
    public func waitForSleepers(at deadlines: [Swift.Duration], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let expected = deadlines.sorted()
        try await eventually(timeout: .seconds(300), "tasks asleep on the manual clock until \(expected) (now: \(pendingDeadlines))",
                             sourceLocation: sourceLocation) {
            pendingDeadlines == expected
        }
    }
}
