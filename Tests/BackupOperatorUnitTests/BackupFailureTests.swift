import BackupOperator
import BackupResolution
import CustomResources
import KubernetesClient
import S3
import SnapshotPipeline
@testable import TalosAPI
import Testing

@Suite("What each pipeline error amounts to: reason and message")
struct BackupFailureTests {
    @Test("each kind of error gets its reason, and a message that says what to fix")
    func classification() {
        let corrupt = BackupFailure.classify(SnapshotCorrupt(reason: "the SHA-256 of its contents does not match the 32-byte trailer"))
        #expect(corrupt.reason == .snapshotCorrupt && corrupt.message.contains("nothing was stored") && corrupt.retryable)

        // Connection errors read the same in a status whatever the socket said: no port-scan oracle.
        let unreachable = BackupFailure.classify(TalosUnreachable(failures: [("endpoint 10.0.0.1:50000", "connection refused"),
                                                                             ("endpoint 10.0.0.2:50000", "TLS handshake failed")]))
        #expect(unreachable.reason == .talosUnreachable)
        #expect(unreachable.message == "no Talos endpoint could serve the snapshot: endpoint 10.0.0.1:50000: unreachable; endpoint 10.0.0.2:50000: unreachable (the operator's log has each connection error)")
        let noStore = BackupFailure.classify(S3Error(code: "ConnectionFailed", message: "connect(2) refused: errno 111", statusCode: 0,
                                                     operation: "ListMultipartUploads", bucket: "b", key: "k", region: "us-east-1"))
        #expect(noStore.message == "S3 ListMultipartUploads failed: cannot reach the S3 endpoint (the operator's log has the connection error)")

        let denied = BackupFailure.classify(TalosAPIError(code: .permissionDenied, grpcCode: "permissionDenied", message: "not authorized"))
        #expect(denied.reason == .talosError && denied.message.contains("os:etcd:backup") && denied.message.contains("not authorized"))
        let broken = BackupFailure.classify(TalosAPIError(code: .unavailable, grpcCode: "unavailable", message: "stream reset"))
        #expect(broken.reason == .talosError && !broken.message.contains("os:etcd:backup"))

        let s3 = BackupFailure.classify(S3Error(code: "NoSuchBucket", message: "The specified bucket does not exist", statusCode: 404,
                                                operation: "CreateMultipartUpload", bucket: "etcd", key: "k", region: "eu-west-1"))
        #expect(s3.reason == .uploadFailed && s3.message.contains("bucket etcd does not exist in eu-west-1") && s3.message.contains("NoSuchBucket"))

        let kubernetes = BackupFailure.classify(KubernetesError(code: 500, status: nil, request: "PUT /apis/x"))
        #expect(kubernetes.reason == .internalError && kubernetes.message.contains("PUT /apis/x"))

        let named = BackupFailure(reason: .objectExists, message: "s3://b/k exists", retryable: false)
        #expect(BackupFailure.classify(named) == named, "a BackupFailure stays as it is")
    }

    @Test("each way the pipeline refuses an object gets its reason, keeps its message, and is retried only when that can help")
    func pipelineFailures() {
        let expected: [PipelineFailure.Kind: (reason: ConditionReason, retryable: Bool)] = [
            .stalled: (BackupFailure.Reason.snapshotStalled, true),
            .objectExists: (BackupFailure.Reason.objectExists, false),
            .objectReplaced: (BackupFailure.Reason.objectReplaced, true),
            .recordMismatch: (BackupFailure.Reason.uploadFailed, false),
            .incomplete: (BackupFailure.Reason.internalError, true),
            .encryptionNotApplied: (BackupFailure.Reason.uploadFailed, false),
            .lockNotApplied: (BackupFailure.Reason.uploadFailed, false),
            .objectLocked: (BackupFailure.Reason.objectLocked, false),
        ]
        #expect(Set(expected.keys) == Set(PipelineFailure.Kind.allCases), "every kind has an expectation")
        for (kind, (reason, retryable)) in expected {
            let failure = BackupFailure.classify(PipelineFailure(kind, "s3://b/k: \(kind.rawValue)"))
            #expect(failure.reason == reason, "\(kind)")
            #expect(failure.retryable == retryable, "\(kind)")
            #expect(failure.message == "s3://b/k: \(kind.rawValue)")
            // A lock, and versions a backup cannot have written, are refusals that deleting a
            // backup waits out for a bounded time; the others never reach deletion.
            #expect(BackupFailure.isPermanentStoreFailure(PipelineFailure(kind, "")) == [.objectLocked, .objectExists].contains(kind), "\(kind)")
        }
    }
}
