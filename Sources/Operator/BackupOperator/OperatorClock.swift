import Foundation
import Waiting

/// The time the controllers read, and how long to wait in real time for a span of it.
///
/// In production it is the system clock. End-to-end tests run the operator with a scaled clock
/// (`--clock-scale 30 --clock-epoch T`: from `T` on, 30 seconds pass per real second), so a
/// `* * * * *` schedule ticks every two real seconds and a suite sees several ticks quickly,
/// with the cron engine, the requeue delays and the backoff all exercised unchanged.
/// Processes given the same epoch and scale agree on the time, as two operator replicas must.
/// Reconciler tests set the time directly with ``init(scale:now:timers:)``.
///
/// `timers` is what the reconcilers' own bounds sleep on (the clean-up after an unfinished
/// attempt): the real clock in production, a manual one in tests that check such a bound
/// without waiting for it.
public struct OperatorClock: Sendable {
    public let scale: Double
    public let timers: any Clock<Duration>
    private let read: @Sendable () -> Date

    public init(epoch: Date, scale: Double) {
        let scale = max(scale, 1)
        self.scale = scale
        self.timers = TimerClock()
        self.read = { scale == 1 ? Date() : epoch + Date().timeIntervalSince(epoch) * scale }
    }

    /// A clock that reads `now` (tests move it by hand).
    public init(scale: Double = 1, now: @escaping @Sendable () -> Date, timers: any Clock<Duration> = TimerClock()) {
        self.scale = max(scale, 1)
        self.timers = timers
        self.read = now
    }

    public static let system = OperatorClock(epoch: Date(timeIntervalSince1970: 0), scale: 1)

    public func now() -> Date { read() }

    /// Real time to wait for `interval` seconds of this clock to pass.
    public func realDuration(of interval: TimeInterval) -> Duration {
        .milliseconds(Int64((max(interval, 0) / scale * 1000).rounded(.up)))
    }
}
