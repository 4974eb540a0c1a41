import Waiting
import DequeModule
import HeapModule
import KubernetesClient
import Metrics
import Synchronization

/// client-go's work queue semantics: a key waiting to be processed is queued once however
/// often it is added; a key is never handed to two workers at once (added while in flight, it
/// is queued again when the worker is done); delayed adds fire at their time from one timer
/// loop, ``runTimers()``, over a heap of deadlines (no polling, and no task per delayed key:
/// 1,000 schedules waiting for their next run cost one sleeping task); per-key exponential backoff on errors (5 ms doubling to
/// 1000 s), reset by ``forget(_:)``; ``shutDown()`` wakes idle workers so they exit, while busy
/// ones finish their key. Synchronous apart from waiting, so it can be shut down from a
/// cancellation handler. Delays run on the clock it is given (the real one in production, a
/// manual one in tests of the requeue logic).
///
/// With a ``GroupLimit`` (the backup controller's: one group per namespace), no group has more
/// than its limit of keys in flight: a worker skips the queued keys of a group at its limit
/// and takes the first key of another, so one tenant whose backups are slow holds at most that
/// many workers and the others' backups still run. Keys skipped keep their place in the queue.
public final class WorkQueue<Key: Hashable & Sendable>: Sendable {
    /// At most `maxInFlight` keys of the same group (`group(key)`) are handed out at once; keys
    /// whose group is nil are not limited.
    public struct GroupLimit: Sendable {
        public var maxInFlight: Int
        public var group: @Sendable (Key) -> String?

        public init(maxInFlight: Int, group: @escaping @Sendable (Key) -> String?) {
            self.maxInFlight = max(1, maxInFlight)
            self.group = group
        }
    }

    private struct State {
        var queue = Deque<Key>()
        var dirty = Set<Key>()
        var processing = Set<Key>()
        var waiters: [CheckedContinuation<Key?, Never>] = []
        var failures: [Key: Int] = [:]
        /// The current deadline of each delayed key (on ``time``); a heap entry that disagrees
        /// is stale.
        var delayed: [Key: Duration] = [:]
        var timers = Heap<Timer>()
        /// Opened to wake the timer loop: an earlier deadline arrived, or the queue shut down.
        var timerWake = Latch()
        var shuttingDown = false
        /// When each queued key was added (for ``WorkQueueMetrics``' queue duration).
        var addedAt: [Key: ContinuousClock.Instant] = [:]
        /// Keys in flight per group, when a ``GroupLimit`` is set.
        var inFlightPerGroup: [String: Int] = [:]
    }

    /// A delayed add, ordered by its deadline.
    private struct Timer: Comparable {
        var deadline: Duration
        var key: Key
        static func < (lhs: Timer, rhs: Timer) -> Bool { lhs.deadline < rhs.deadline }
        static func == (lhs: Timer, rhs: Timer) -> Bool { lhs.deadline == rhs.deadline }
    }

    private let state = Mutex(State())
    public let baseDelay: Duration
    public let maxDelay: Duration
    private let metrics: WorkQueueMetrics?
    private let time: ElapsedTime
    public let groupLimit: GroupLimit?

    public init(baseDelay: Duration = .milliseconds(5), maxDelay: Duration = .seconds(1000), metrics: WorkQueueMetrics? = nil,
                groupLimit: GroupLimit? = nil, clock: any Clock<Duration> = TimerClock()) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.metrics = metrics
        self.groupLimit = groupLimit
        self.time = ElapsedTime(clock)
    }

    /// Whether `key` may be handed out now: its group is below its limit.
    private func mayStart(_ key: Key, _ inFlightPerGroup: [String: Int]) -> Bool {
        guard let groupLimit, let group = groupLimit.group(key) else { return true }
        return inFlightPerGroup[group, default: 0] < groupLimit.maxInFlight
    }

    private func startProcessing(_ key: Key, _ state: inout State) {
        state.processing.insert(key)
        if let group = groupLimit?.group(key) { state.inFlightPerGroup[group, default: 0] += 1 }
    }

    private func finishProcessing(_ key: Key, _ state: inout State) {
        guard state.processing.remove(key) != nil else { return }
        if let group = groupLimit?.group(key), let count = state.inFlightPerGroup[group] {
            state.inFlightPerGroup[group] = count > 1 ? count - 1 : nil
        }
    }

    /// Removes and starts the first queued key that may start (the first one without a limit).
    private func takeFirstStartable(_ state: inout State) -> (key: Key, waited: Duration?)? {
        let index: Int?
        if groupLimit == nil {
            index = state.queue.isEmpty ? nil : state.queue.startIndex
        } else {
            let inFlight = state.inFlightPerGroup
            index = state.queue.firstIndex { mayStart($0, inFlight) }
        }
        guard let index else { return nil }
        let key = state.queue.remove(at: index)
        state.dirty.remove(key)
        startProcessing(key, &state)
        return (key, state.addedAt.removeValue(forKey: key).map { ContinuousClock.now - $0 })
    }

    /// Queues `key` unless it is already waiting.
    public func add(_ key: Key) {
        let (handed, depth) = state.withLock { state -> ((CheckedContinuation<Key?, Never>, Key)?, Int?) in
            guard !state.shuttingDown, !state.dirty.contains(key) else { return (nil, nil) }
            if state.processing.contains(key) {
                state.dirty.insert(key)  // queued again by done(_:)
                return (nil, nil)
            }
            if !state.waiters.isEmpty, groupLimit == nil {
                startProcessing(key, &state)
                return ((state.waiters.removeFirst(), key), nil)
            }
            state.dirty.insert(key)
            state.queue.append(key)
            if metrics != nil { state.addedAt[key] = .now }
            // With a group limit, a waiting worker takes the first key that may start, in
            // order: a key added again does not pass the older keys of its group.
            if !state.waiters.isEmpty, let taken = takeFirstStartable(&state) {
                return ((state.waiters.removeFirst(), taken.key), nil)
            }
            return (nil, state.queue.count)
        }
        if let metrics, handed != nil || depth != nil {
            metrics.adds.increment()
            if let depth { metrics.depth.set(depth) } else { metrics.queueDuration.record(duration: .zero) }
        }
        if let handed { handed.0.resume(returning: handed.1) }
    }

    /// Queues `key` once `delay` has passed; an earlier pending time for the key wins.
    public func add(_ key: Key, after delay: Duration) {
        guard delay > .zero else { return add(key) }
        let deadline = time.now + delay
        let wake = state.withLock { state -> Latch? in
            guard !state.shuttingDown else { return nil }
            if let existing = state.delayed[key], existing <= deadline { return nil }
            state.delayed[key] = deadline
            let earliest = state.timers.min?.deadline
            state.timers.insert(Timer(deadline: deadline, key: key))
            return earliest.map { deadline < $0 } ?? true ? state.timerWake : nil
        }
        wake?.open()
    }

    /// Queues `key` after its backoff, which doubles with each consecutive failure.
    public func addRateLimited(_ key: Key) {
        metrics?.retries.increment()
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
            let (immediate, waited, depth) = state.withLock { state -> (Key??, Duration?, Int) in
                if let taken = takeFirstStartable(&state) {
                    return (.some(taken.key), taken.waited, state.queue.count)
                }
                if state.shuttingDown { return (.some(nil), nil, 0) }
                state.waiters.append(continuation)
                return (nil, nil, 0)
            }
            if let metrics, let waited {
                metrics.depth.set(depth)
                metrics.queueDuration.record(duration: waited)
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Marks `key` processed; if it was added meanwhile, it is queued again. With a
    /// ``GroupLimit``, a waiting worker gets a queued key its group now lets start.
    public func done(_ key: Key) {
        let (again, handed) = state.withLock { state -> (Bool, (CheckedContinuation<Key?, Never>, Key, Duration?, Int)?) in
            finishProcessing(key, &state)
            let again = state.dirty.remove(key) != nil
            guard !again, groupLimit != nil, !state.shuttingDown, !state.waiters.isEmpty,
                  let taken = takeFirstStartable(&state) else { return (again, nil) }
            return (again, (state.waiters.removeFirst(), taken.key, taken.waited, state.queue.count))
        }
        if again { add(key) }
        if let (waiter, next, waited, depth) = handed {
            if let metrics, let waited {
                metrics.depth.set(depth)
                metrics.queueDuration.record(duration: waited)
            }
            waiter.resume(returning: next)
        }
    }

    /// Stops handing out keys: idle workers get nil; in-flight keys finish normally.
    public func shutDown() {
        let (waiters, wake) = state.withLock { state -> ([CheckedContinuation<Key?, Never>], Latch) in
            state.shuttingDown = true
            defer { state.waiters.removeAll() }
            return (state.waiters, state.timerWake)
        }
        wake.open()
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    public var length: Int { state.withLock { $0.queue.count } }
    public var inFlight: Int { state.withLock { $0.processing.count } }
    /// Workers waiting in ``next()``.
    public var waitingWorkers: Int { state.withLock { $0.waiters.count } }

    /// Runs the timers of delayed adds until shut down or cancelled: one loop that sleeps until
    /// the earliest deadline (or until an earlier one arrives) and queues every key that is due.
    public func runTimers() async {
        while !Task.isCancelled {
            let now = time.now
            let (due, earliest, wake, stop) = state.withLock { state -> ([Key], Duration?, Latch, Bool) in
                var due: [Key] = []
                while let first = state.timers.min, first.deadline <= now {
                    let timer = state.timers.removeMin()
                    if state.delayed[timer.key] == timer.deadline {  // else superseded by an earlier time
                        state.delayed[timer.key] = nil
                        due.append(timer.key)
                    }
                }
                state.timerWake = Latch()
                return (due, state.timers.min?.deadline, state.timerWake, state.shuttingDown)
            }
            if stop { return }
            for key in due { add(key) }
            guard due.isEmpty else { continue }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await wake.wait() }
                if let earliest {
                    group.addTask { [time] in try? await time.sleep(until: earliest) }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }
}
