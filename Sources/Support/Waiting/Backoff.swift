/// Exponential backoff: `base` × 2^`retry` for the retry after `retry` earlier ones (0 for
/// the first retry), capped at `cap`, optionally with full jitter (a uniformly random share of
/// that, as AWS recommends for many clients retrying the same server). The one formula behind
/// every retry here: Kubernetes requests, informer relists, work-queue keys, S3 requests and
/// backup attempts each pick their base and cap.
public struct Backoff: Sendable, Equatable {
    public var base: Duration
    public var cap: Duration
    public var jitter: Bool

    public init(base: Duration, cap: Duration, jitter: Bool = false) {
        self.base = base
        self.cap = cap
        self.jitter = jitter
    }

    /// The wait before retry number `retry + 1` (`retry` counts the retries already made).
    public func delay(retry: Int) -> Duration {
        var delay = base
        for _ in 0..<max(0, min(retry, 64)) {
            delay *= 2
            if delay >= cap { delay = cap; break }
        }
        delay = min(delay, cap)
        return jitter ? delay * Double.random(in: 0...1) : delay
    }
}
