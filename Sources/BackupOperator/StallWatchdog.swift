import Foundation
import NIOCore
import Deadline

/// Fails a transfer whose snapshot stream stops moving. A Talos node that stops sending (or a
/// store that stops taking parts, which stops the stream too) must not hold a backup, and
/// with `concurrencyPolicy: Forbid` every later backup of its schedule, forever: after
/// `limit` without a new chunk the transfer is cancelled (its upload aborted) and the attempt
/// fails with `SnapshotStalled`, to be retried like any other failure.
///
/// Measured on progress (the time since the last chunk), on `clock`: the real one in
/// production, a manual one in tests of this logic.
struct StallWatchdog: Sendable {
    let limit: Duration
    var clock: any Clock<Duration> = ContinuousClock()

    /// Runs `body`, which reports progress by calling the closure it is given.
    func run<T: Sendable>(_ body: @escaping @Sendable (_ progressed: @escaping @Sendable () -> Void) async throws -> T) async throws -> T {
        let limit = self.limit
        return try await withIdleTimeout(limit, clock: clock, idle: { idle in
            BackupFailure(
                reason: BackupFailure.Reason.snapshotStalled,
                message: "no snapshot data for \(idle.components.seconds) s (limit \(limit.components.seconds) s): the Talos stream or the upload stalled; the upload was aborted")
        }, body)
    }
}

/// The chunks of `base`, calling `observe` as each arrives.
struct ObservedChunks<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let observe: @Sendable () -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let observe: @Sendable () -> Void

        mutating func next() async throws -> ByteBuffer? {
            let chunk = try await base.next()
            if chunk != nil { observe() }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), observe: observe) }
}
