import Synchronization

/// Paces readers to at most `bytesPerSecond` together, on average: a token bucket holding one
/// second's worth, that a reader may overdraw by one chunk and then waits to repay. Shared by
/// every reader it limits (the operator's verifications), so that re-reading stored backups
/// never takes the bandwidth scheduled backups need. Cancellation ends a wait at once.
public final class BandwidthLimit: Sendable {
    public let bytesPerSecond: Int
    private let bucket: Mutex<(available: Double, at: ContinuousClock.Instant)>

    /// `bytesPerSecond` below 1 is taken as 1.
    public init(bytesPerSecond: Int) {
        self.bytesPerSecond = max(1, bytesPerSecond)
        bucket = Mutex((Double(max(1, bytesPerSecond)), ContinuousClock.now))
    }

    /// Accounts for `bytes` just read, waiting as long as the average rate requires.
    public func take(_ bytes: Int) async throws {
        let rate = Double(bytesPerSecond)
        let wait = bucket.withLock { bucket -> Double in
            let now = ContinuousClock.now
            let elapsed = now - bucket.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.available = min(rate, bucket.available + seconds * rate) - Double(max(0, bytes))
            bucket.at = now
            return bucket.available >= 0 ? 0 : -bucket.available / rate
        }
        if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
    }
}
