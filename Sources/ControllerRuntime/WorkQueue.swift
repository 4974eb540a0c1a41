import Deadline
import DequeModule
import KubernetesClient
import Synchronization

/// client-go's work queue semantics: a key waiting to be processed is queued once however
/// often it is added; a key is never handed to two workers at once (added while in flight, it
/// is queued again when the worker is done); delayed adds fire at their time from timers owned
/// by ``runTimers()`` (no polling); per-key exponential backoff on errors (5 ms doubling to
/// 1000 s), reset by ``forget(_:)``; ``shutDown()`` wakes idle workers so they exit, while busy
/// ones finish their key. Synchronous apart from waiting, so it can be shut down from a
/// cancellation handler.
public final class WorkQueue<Key: Hashable & Sendable>: Sendable {
    private struct State {
        var queue = Deque<Key>()
        var dirty = Set<Key>()
        var processing = Set<Key>()
        var waiters: [CheckedContinuation<Key?, Never>] = []
        var failures: [Key: Int] = [:]
        var delayed: [Key: ContinuousClock.Instant] = [:]
        var shuttingDown = false
    }

    private let state = Mutex(State())
    private let timerRequests: AsyncStream<(Key, ContinuousClock.Instant)>.Continuation
    private let timerStream: AsyncStream<(Key, ContinuousClock.Instant)>
    public let baseDelay: Duration
    public let maxDelay: Duration

    public init(baseDelay: Duration = .milliseconds(5), maxDelay: Duration = .seconds(1000)) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        (timerStream, timerRequests) = AsyncStream.makeStream()
    }

    /// Queues `key` unless it is already waiting.
    public func add(_ key: Key) {
        let waiter: (CheckedContinuation<Key?, Never>)? = state.withLock { state in
            guard !state.shuttingDown, !state.dirty.contains(key) else { return nil }
            if state.processing.contains(key) {
                state.dirty.insert(key)  // queued again by done(_:)
                return nil
            }
            if !state.waiters.isEmpty {
                state.processing.insert(key)
                return state.waiters.removeFirst()
            }
            state.dirty.insert(key)
            state.queue.append(key)
            return nil
        }
        waiter?.resume(returning: key)
    }

    /// Queues `key` once `delay` has passed; an earlier pending time for the key wins.
    public func add(_ key: Key, after delay: Duration) {
        guard delay > .zero else { return add(key) }
        let deadline = ContinuousClock.now + delay
        let schedule = state.withLock { state -> Bool in
            guard !state.shuttingDown else { return false }
            if let existing = state.delayed[key], existing <= deadline { return false }
            state.delayed[key] = deadline
            return true
        }
        if schedule { timerRequests.yield((key, deadline)) }
    }

    /// Queues `key` after its backoff, which doubles with each consecutive failure.
    public func addRateLimited(_ key: Key) {
        let count = state.withLock { state -> Int in
            let count = state.failures[key, default: 0]
            state.failures[key] = count + 1
            return count
        }
        add(key, after: backoff(failures: count))
    }

    /// The delay after `failures` earlier consecutive failures: base × 2^failures, capped.
    public func backoff(failures: Int) -> Duration {
        Backoff(base: baseDelay, cap: maxDelay).delay(retry: failures)
    }

    /// Clears `key`'s failure count (after a success).
    public func forget(_ key: Key) {
        state.withLock { _ = $0.failures.removeValue(forKey: key) }
    }

    public func failureCount(_ key: Key) -> Int { state.withLock { $0.failures[key, default: 0] } }

    /// The next key to process, waiting for one; nil once shut down.
    public func next() async -> Key? {
        await withCheckedContinuation { continuation in
            let immediate: Key?? = state.withLock { state in
                if let key = state.queue.popFirst() {
                    state.dirty.remove(key)
                    state.processing.insert(key)
                    return .some(key)
                }
                if state.shuttingDown { return .some(nil) }
                state.waiters.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Marks `key` processed; if it was added meanwhile, it is queued again.
    public func done(_ key: Key) {
        let again = state.withLock { state -> Bool in
            state.processing.remove(key)
            return state.dirty.remove(key) != nil
        }
        if again { add(key) }
    }

    /// Stops handing out keys: idle workers get nil; in-flight keys finish normally.
    public func shutDown() {
        let waiters = state.withLock { state -> [CheckedContinuation<Key?, Never>] in
            state.shuttingDown = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        timerRequests.finish()
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    public var length: Int { state.withLock { $0.queue.count } }
    public var inFlight: Int { state.withLock { $0.processing.count } }

    /// Runs the timers of delayed adds until shut down or cancelled: one child task per
    /// pending delayed key, all cancelled with this task.
    public func runTimers() async {
        await withDiscardingTaskGroup { group in
            for await (key, deadline) in timerStream {
                group.addTask { [self] in
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    if Task.isCancelled { return }
                    self.fire(key, deadline: deadline)
                }
            }
            group.cancelAll()
        }
    }

    private func fire(_ key: Key, deadline: ContinuousClock.Instant) {
        let due = state.withLock { state -> Bool in
            guard state.delayed[key] == deadline else { return false }  // superseded by an earlier time
            state.delayed[key] = nil
            return true
        }
        if due { add(key) }
    }
}
