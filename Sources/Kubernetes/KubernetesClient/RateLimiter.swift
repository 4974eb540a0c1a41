/// Client-side token bucket (client-go's `--kube-api-qps`/`--kube-api-burst`): up to `burst`
/// requests at once, refilled at `rate` per second; callers wait their turn in order.
actor RateLimiter {
    private let rate: Double
    private let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant
    private let clock = ContinuousClock()

    init(rate: Double, burst: Int) {
        self.rate = max(rate, 0.001)
        self.burst = Double(max(burst, 1))
        self.tokens = Double(max(burst, 1))
        self.last = clock.now
    }

    func acquire() async throws {
        refill()
        tokens -= 1  // reserve now, so waiters queue behind each other
        if tokens >= 0 { return }
        let wait = -tokens / rate
        try await Task.sleep(for: .seconds(wait))
    }

    private func refill() {
        let now = clock.now
        let elapsed = now - last
        last = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * rate)
    }
}
