/// A clock that sleeps on `Base` in slices of at most `slice`: for timers that are mostly
/// cancelled before they fire (deadlines, idle timeouts, the work queue's delayed keys).
/// ``TimerClock`` is it over the real clock, what production uses.
///
/// Why: the Swift runtime on Linux keeps a cancelled sleep's timer, and the memory that goes
/// with it, until the time the sleep was asked to end. Measured here (Swift 6, heaptrack):
/// 20,000 sleeps of an hour, each cancelled at once, held 3.85 MiB for that hour; sleeps of two
/// seconds held nothing once they had run out. The operator bounds every backup attempt by an
/// hour (`--backup-attempt-timeout-seconds`) and every API request by 30 s, and almost every
/// such bound is cancelled when its work ends, so a busy operator kept each attempt's spent
/// timer for an hour. In slices, a cancelled sleep holds its memory for one slice at most, at
/// the cost of one wake-up per slice while it sleeps.
public struct SlicingClock<Base: Clock>: Clock where Base.Duration == Swift.Duration {
    public typealias Instant = Base.Instant
    public typealias Duration = Swift.Duration

    public let base: Base
    /// The longest one sleep of `base` lasts.
    public let slice: Duration

    public init(_ base: Base, slice: Duration = .seconds(10)) {
        self.base = base
        self.slice = max(slice, .milliseconds(1))
    }

    public var now: Instant { base.now }
    public var minimumResolution: Duration { base.minimumResolution }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        repeat {
            try await base.sleep(until: min(deadline, base.now.advanced(by: slice)), tolerance: tolerance)
            try Task.checkCancellation()  // also on a base clock whose sleep returns when cancelled
        } while base.now < deadline
    }
}

/// The real clock (`ContinuousClock`) in slices of 10 s: what the operator's deadlines and
/// timers sleep on (``SlicingClock`` says why).
public typealias TimerClock = SlicingClock<ContinuousClock>

extension SlicingClock where Base == ContinuousClock {
    public init() { self.init(ContinuousClock()) }
}
