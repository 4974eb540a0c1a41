import Bbolt
import Foundation
import KubernetesClient
import S3
import SnapshotPipeline
import TalosAPI
import CustomResources

/// Why a backup attempt failed, as its `Failed` condition and Warning Event say it: a reason
/// from the list in docs/design.md, Status, and a message that names what to fix (the Secret,
/// the key, the bucket).
public struct BackupFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: ConditionReason
    public var message: String
    /// False when trying again cannot help (an invalid spec, an object that is not ours):
    /// the backup fails at once instead of using up its attempts.
    public var retryable: Bool

    public init(reason: ConditionReason, message: String, retryable: Bool = true) {
        self.reason = reason
        self.message = message
        self.retryable = retryable
    }

    public var description: String { "\(reason.rawValue): \(message)" }

    /// The reasons the `Failed` condition and Warning Events use (docs/design.md, Status).
    public typealias Reason = ConditionReason

    /// Whether a failure to reach a stored object is one waiting cannot fix: the credentials
    /// Secret or key is gone, the bucket is gone, the store refuses the key, or the operator
    /// may not reach its host (``EndpointGuard``). Connection
    /// failures, 5xx and throttling are transient.
    public static func isPermanentStoreFailure(_ error: any Error) -> Bool {
        switch error {
        case let failure as BackupFailure:
            return failure.reason == Reason.credentialsNotFound || failure.reason == Reason.endpointNotAllowed
        case let s3 as S3Error:
            return [.noSuchBucket, .accessDenied, .signatureDoesNotMatch, .invalidAccessKeyId].contains(s3.kind)
        case let credentials as S3CredentialsError:
            return !credentials.retryable
        case let failure as PipelineFailure:
            // A lock that holds; or, deleting, versions a backup cannot have written.
            return failure.kind == .objectLocked || failure.kind == .objectExists
        default:
            return false
        }
    }

    /// The failure any error of the pipeline amounts to.
    public static func classify(_ error: any Error) -> BackupFailure {
        switch error {
        case let failure as BackupFailure:
            return failure
        case let failure as PipelineFailure:
            return BackupFailure(reason: reason(of: failure.kind), message: failure.message, retryable: failure.retryable)
        case let corrupt as SnapshotCorrupt:
            return BackupFailure(reason: Reason.snapshotCorrupt, message: "\(corrupt); the upload was aborted and nothing was stored")
        case let invalid as BboltInvalid:
            return BackupFailure(reason: Reason.snapshotInvalid, message: "\(invalid); the upload was aborted and nothing was stored")
        case let unreachable as TalosUnreachable:
            // Only "unreachable" per target: a status must not tell a tenant which ports of
            // which hosts answer. The operator logs the errors themselves.
            return BackupFailure(reason: Reason.talosUnreachable, message: unreachable.summary + " (the operator's log has each connection error)")
        case let rpc as TalosAPIError:
            let what = rpc.code == .permissionDenied
                ? "the talosconfig's certificate may not take etcd snapshots (it needs role os:admin or os:etcd:backup)"
                : "the Talos API failed"
            return BackupFailure(reason: Reason.talosError, message: "\(what): \(rpc)")
        case let s3 as S3Error where s3.kind == .connectionFailed:
            return BackupFailure(reason: Reason.uploadFailed,
                                 message: "S3 \(s3.operation) failed: cannot reach the S3 endpoint (the operator's log has the connection error)")
        case let s3 as S3Error:
            return BackupFailure(reason: Reason.uploadFailed, message: "\(s3.operation) failed: \(s3.description) (S3 code \(s3.code))")
        case let credentials as S3CredentialsError:
            // Which source and what it said (never a secret): an STS refusal names the role, a
            // token file names its path, so the operator's owner sees what to fix.
            return BackupFailure(reason: Reason.credentialsNotFound, message: "no S3 credentials from \(credentials.description)")
        case let kubernetes as KubernetesError:
            return BackupFailure(reason: Reason.internalError, message: "Kubernetes API: \(kubernetes.description)")
        default:
            return BackupFailure(reason: Reason.internalError, message: "\(error)")
        }
    }

    /// The condition reason of each way the pipeline refuses to store or keep an object.
    static func reason(of kind: PipelineFailure.Kind) -> ConditionReason {
        switch kind {
        case .stalled: Reason.snapshotStalled
        case .objectExists: Reason.objectExists
        case .objectReplaced: Reason.objectReplaced
        case .recordMismatch: Reason.uploadFailed
        case .incomplete: Reason.internalError
        case .encryptionNotApplied, .lockNotApplied: Reason.uploadFailed
        case .objectLocked: Reason.objectLocked
        }
    }
}
