import Waiting
import NIOCore
import TalosAPI

/// Recovery of a Talos control plane's etcd from a backup, as `talosctl bootstrap
/// --recover-from` does it but streaming (no temporary file): the plain snapshot coming out of
/// ``SnapshotRestore`` (every check on the way) is uploaded with EtcdRecover, and only when the
/// stream ended with every check holding does the upload complete and Bootstrap with
/// `recover_etcd` (Talos checking the trailer again) follow. A check that fails mid-way cancels
/// the upload: Talos discards the partial snapshot and nothing is bootstrapped.
public enum SnapshotRecovery {
    /// Uploads what `read` produces to `node` through `endpoint` and bootstraps it. The upload
    /// is cancelled when neither the download nor the upload moves for `stallTimeout`.
    public static func recover(
        client: TalosClient, endpoint: TalosEndpoint, node: String?, stallTimeout: Duration = .seconds(120),
        read: @escaping @Sendable (_ sink: @escaping @Sendable (ByteBuffer) async throws -> Void) async throws -> RestoredSnapshot
    ) async throws -> RestoredSnapshot {
        let target = node ?? endpoint.description
        let uploaded = try await withIdleTimeout(stallTimeout, idle: { idle in
            RecoveryStalled(node: target, seconds: idle.components.seconds)
        }) { progressed in
            try await client.uploadRecoverySnapshot(endpoint: endpoint, node: node) { send in
                try await read { chunk in
                    try await send(chunk)
                    progressed()
                }
            }
        }
        try await client.bootstrap(endpoint: endpoint, node: node, recoverEtcd: true)
        return uploaded
    }
}

/// A recovery upload that stopped moving.
public struct RecoveryStalled: Error, Sendable, CustomStringConvertible {
    public var node: String
    public var seconds: Int64
    public var description: String {
        "the snapshot upload to node \(node) made no progress for \(seconds) s and was cancelled; the node discards a partial upload"
    }
}
