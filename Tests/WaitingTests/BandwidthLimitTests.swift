import Testing
import Waiting

/// The bandwidth limit verifications read under: a second's worth at once, then the average.
/// Only lower bounds on the wall clock (a loaded machine makes a wait longer, never shorter).
@Suite("Bandwidth limit")
struct BandwidthLimitTests {
    @Test("what comes beyond a second's worth waits for the average rate; cancellation ends a wait")
    func paces() async throws {
        let limit = BandwidthLimit(bytesPerSecond: 4 << 20)
        let clock = ContinuousClock()
        let start = clock.now
        try await limit.take(4 << 20)
        try await limit.take(2 << 20)  // half a second's debt
        let elapsed = clock.now - start
        #expect(elapsed >= .milliseconds(450), "\(elapsed)")
        #expect(BandwidthLimit(bytesPerSecond: 0).bytesPerSecond == 1, "never zero")

        let waiting = Task { try await limit.take(40 << 20) }  // ten seconds' debt
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
    }
}
