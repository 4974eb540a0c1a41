import Logging
import SnapshotPipeline

extension TalosToS3Transfer {
    /// The operator's transfer with a Talos timeout of five minutes instead of 30 s, for tests
    /// that take a real snapshot from the Talos test server and expect it to succeed.
    ///
    /// Why: in the integration stage about 190 tests share two cores, and the Talos test server
    /// answers EtcdStatus and EtcdSnapshot by running etcdctl against its own etcd. Twice (once
    /// in a CI run, once under `scripts/test-repeat --load`) a first attempt failed as
    /// TalosUnreachable after a single reconcile (the status says only "unreachable"), and the
    /// same suites passed 8 runs in a row beside `stress-ng --cpu 4` without the rest of the
    /// stage. Talos is unreachable only by a refused connection or TLS handshake, which a
    /// listening test server does not give, or by the Talos timeout, which covers connecting,
    /// EtcdStatus and the snapshot's first response (each an etcdctl run on the server). These
    /// tests are not about that timeout (TalosClientTests are); with the production bound they
    /// asserted that a loaded machine answers within 30 s.
    static func unhurried(stallTimeout: Duration = .seconds(120), logger: Logger = Logger(label: "snapshot-transfer")) -> TalosToS3Transfer {
        TalosToS3Transfer(talosTimeout: .seconds(300), stallTimeout: stallTimeout, logger: logger)
    }
}
