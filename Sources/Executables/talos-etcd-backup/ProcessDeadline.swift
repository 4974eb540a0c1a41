import Dispatch
import Foundation
import Logging
import Synchronization

/// Ends the process when a stop takes longer than it may. A replica that lost its Lease must
/// stop acting, and a SIGTERM must end the process, even when the API server (or S3, or a
/// Talos node) leaves every request hanging: cleaning up (releasing the Lease, aborting
/// uploads) is best effort within the grace period, then the process exits anyway.
///
/// The timer runs on a Dispatch queue, outside Swift concurrency, so that no cancelled or
/// blocked task can stop it; it is armed at most once.
final class ProcessDeadline: Sendable {
    private let armed = Mutex(false)
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// After `limit`, logs why and exits with `status`, unless the process has ended first.
    func arm(after limit: Duration, status: Int32, reason: String) {
        let first = armed.withLock { armed in
            defer { armed = true }
            return !armed
        }
        guard first else { return }
        let (seconds, attoseconds) = limit.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        let logger = self.logger
        // A queue of its own: the global queues' few threads may all be blocked by then.
        DispatchQueue(label: "process-deadline").asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
            logger.critical("\(reason) did not finish within \(limit); exiting with status \(status)")
            exit(status)
        }
    }
}
