import Foundation

/// The time the schedule controller reads, and how long to wait in real time for a span of it.
///
/// In production it is the system clock. Tests run the operator with a scaled clock
/// (`--clock-scale 30 --clock-epoch T`: from `T` on, 30 seconds pass per real second), so a
/// `* * * * *` schedule ticks every two real seconds and a suite sees several ticks quickly,
/// with the cron engine, the requeue delays and the backoff all exercised unchanged.
/// Processes given the same epoch and scale agree on the time, as two operator replicas must.
public struct OperatorClock: Sendable {
    public var epoch: Date
    public var scale: Double

    public init(epoch: Date, scale: Double) {
        self.epoch = epoch
        self.scale = max(scale, 1)
    }

    public static let system = OperatorClock(epoch: Date(timeIntervalSince1970: 0), scale: 1)

    public func now() -> Date {
        scale == 1 ? Date() : epoch + Date().timeIntervalSince(epoch) * scale
    }

    /// Real time to wait for `interval` seconds of this clock to pass.
    public func realDuration(of interval: TimeInterval) -> Duration {
        .milliseconds(Int64((max(interval, 0) / scale * 1000).rounded(.up)))
    }
}
