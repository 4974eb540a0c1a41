import Foundation
import NIOCore
import Waiting
import Synchronization

/// Fails a transfer whose snapshot stream stops moving, or moves too little to ever finish. A
/// Talos node that stops sending (or a store that stops taking parts, which stops the stream
/// too) must not hold a backup, and with `concurrencyPolicy: Forbid` every later backup of its
/// schedule, forever; nor may one that sends a byte now and then to stay alive.
///
/// The stream must move at least `floorBytes` (1 MiB) in every `limit` (120 s): after `limit`
/// in which less arrived, the transfer is cancelled (its upload aborted) and the attempt fails
/// with `SnapshotStalled`, to be retried like any other failure. The floor is about 8.5 KiB/s,
/// far below any real link, and a snapshot smaller than the floor is never cut for its size:
/// the stream ends first.
///
/// Measured on progress (the time since the stream last moved `floorBytes`), on `clock`: the
/// real one in production, a manual one in tests of this logic.
struct StallWatchdog: Sendable {
    let limit: Duration
    var floorBytes: Int64 = 1 << 20
    var clock: any Clock<Duration> = TimerClock()

    /// Runs `body`, which reports each chunk's size by calling the closure it is given.
    func run<T: Sendable>(_ body: @escaping @Sendable (_ moved: @escaping @Sendable (_ bytes: Int) -> Void) async throws -> T) async throws -> T {
        let limit = self.limit, floorBytes = self.floorBytes
        let tally = MovedBytes()
        return try await withIdleTimeout(limit, clock: clock, idle: { idle in
            let moved = tally.pending
            let what = moved == 0
                ? "no snapshot data for \(idle.components.seconds) s (limit \(limit.components.seconds) s): the Talos stream or the upload stalled"
                : "only \(moved) bytes of snapshot data in \(idle.components.seconds) s (the floor is \(floorBytes) bytes per \(limit.components.seconds) s): the Talos stream or the upload trickles"
            return PipelineFailure(.stalled, "\(what); the upload was aborted")
        }) { progressed in
            try await body { bytes in
                if tally.add(bytes, floor: floorBytes) { progressed() }
            }
        }
    }
}

/// The bytes a stream moved since it last reached the floor.
private final class MovedBytes: Sendable {
    private let state = Mutex<Int64>(0)

    var pending: Int64 { state.withLock { $0 } }

    /// Counts `bytes`; true (and the count starts again) when the count reached `floor`.
    func add(_ bytes: Int, floor: Int64) -> Bool {
        state.withLock { pending in
            pending = pending.addingReportingOverflow(Int64(bytes)).overflow ? .max : pending + Int64(bytes)
            guard pending >= floor else { return false }
            pending = 0
            return true
        }
    }
}
