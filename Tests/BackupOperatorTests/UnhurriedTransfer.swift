import Logging
import SnapshotPipeline

extension TalosToS3Transfer {
    /// The operator's transfer with a Talos timeout and a stall bound of five minutes instead of
    /// 30 s and 120 s (the stall watchdog runs from the start, so it bounds connecting too),
    /// for tests that take a real snapshot from the Talos test server and expect it to succeed.
    ///
    /// Why: in the integration stage about 190 tests share two cores, and the Talos test server
    /// answers EtcdStatus and EtcdSnapshot by running etcdctl against its own etcd. Twice (once
    /// in a CI run, once under `scripts/test-repeat --load`) a first attempt failed as
    /// TalosUnreachable after a single reconcile (the status says only "unreachable"), and the
    /// same suites passed 8 runs in a row beside `stress-ng --cpu 4` without the rest of the
    /// stage. The likeliest cause is the Talos timeout, which covers connecting, EtcdStatus and
    /// the snapshot's first response (each an etcdctl run on the server); the status cannot say
    /// (a refused connection, a reset, a timeout all read "unreachable" there). These tests
    /// are not about that timeout (TalosClientTests are); with the production bound they
    /// asserted that a loaded machine answers within 30 s.
    static func unhurried(stallTimeout: Duration = .seconds(300), logger: Logger = Logger(label: "snapshot-transfer")) -> TalosToS3Transfer {
        TalosToS3Transfer(talosTimeout: .seconds(300), stallTimeout: stallTimeout, logger: logger)
    }
}
