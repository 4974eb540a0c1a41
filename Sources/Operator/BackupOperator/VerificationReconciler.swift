import BackupResolution
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import Logging
import SnapshotPipeline
import Waiting

/// Checks stored backups again on their schedule's `spec.verification`: a controller of its own
/// (one worker, its reads paced by one ``BandwidthLimit``), so re-reading objects never holds a
/// backup worker nor the bandwidth a scheduled backup needs.
///
/// A backup is due when its schedule's `status.lastVerificationTime` (written by the schedule
/// controller at each verification run) is later than the backup's `lastVerifiedTime`. A
/// Succeeded backup that is not being deleted is read back through the transfer's
/// ``SnapshotTransfer/verify(_:expected:pace:)``, checked against its status (size, SHA-256;
/// for a plain snapshot also etcd's trailer, the bbolt structure, revision and key count; the
/// state object's SHA-256), and the outcome written to its status (`lastVerifiedTime`,
/// `verification`, condition `Verified`):
/// - passed: `Verified` True, `VerificationPassed`;
/// - failed: `Verified` False with `ObjectMissing`, `ObjectChanged` or `SnapshotInvalid`, and a
///   Warning Event of that reason naming the object; not retried before the next run (the
///   object will not heal by itself);
/// - the store could not be read (credentials, network, a host the operator may not reach):
///   `Verified` Unknown with `VerificationError`, a Warning Event when that is new, and retried
///   with backoff; `lastVerifiedTime` is not moved, so the backup stays due, and the last
///   verdict stays in `verification` (a backup found broken stays counted as failed).
/// A backup stored after the run was checked as it streamed: it is not due until the next.
/// Each outcome counts in `talos_etcd_backup_verifications_total{result,reason}`.
public struct VerificationReconciler: Reconciler {
    let backups: ObjectClient<TalosEtcdBackup>
    let schedules: ObjectClient<TalosEtcdBackupSchedule>
    let credentials: CredentialResolver
    let transfer: any SnapshotTransfer
    let bandwidth: BandwidthLimit
    let events: EventRecorder
    let clock: OperatorClock
    let endpoints: EndpointGuard
    let metrics: BackupMetrics
    let timeout: Duration
    let logger: Logger

    /// The read rate by default: 20 MiB/s, a fifth of a gigabit link.
    public static let defaultBandwidth = 20 << 20

    public init(backups: ObjectClient<TalosEtcdBackup>, schedules: ObjectClient<TalosEtcdBackupSchedule>, secrets: any SecretReader, ambientCredentials: AmbientS3Access = .off,
                transfer: any SnapshotTransfer, bandwidth: BandwidthLimit = BandwidthLimit(bytesPerSecond: defaultBandwidth),
                events: EventRecorder, clock: OperatorClock = .system, endpoints: EndpointGuard = EndpointGuard(),
                metrics: BackupMetrics = BackupMetrics(), timeout: Duration = BackupReconciler.defaultAttemptTimeout,
                logger: Logger = Logger(label: "verification-controller")) {
        self.backups = backups
        self.schedules = schedules
        self.credentials = CredentialResolver(secrets: secrets, ambient: ambientCredentials)
        self.transfer = transfer
        self.bandwidth = bandwidth
        self.events = events
        self.clock = clock
        self.endpoints = endpoints
        self.metrics = metrics
        self.timeout = timeout
        self.logger = logger
    }

    /// The verification run `backup` answers to: the last one of its schedule (the schedule
    /// its `backup-schedule` label names, as retention and the schedule's counts select its
    /// backups), when that is later than the backup's own last verification and than its
    /// completion (a backup stored since was checked as it streamed); nil when nothing is due.
    func due(_ backup: TalosEtcdBackup) -> Date? {
        guard backup.metadata.deletionTimestamp == nil, backup.status?.phase == .succeeded, backup.status?.filename != nil,
              let name = backup.metadata.labels?[TalosEtcdBackupSchedule.backupScheduleLabel],
              let schedule = schedules.cached(ObjectKey(namespace: backup.metadata.namespace, name: name)),
              schedule.metadata.deletionTimestamp == nil, schedule.spec.verification != nil,
              let requested = schedule.status?.lastVerificationTime?.date else { return nil }
        if let verified = backup.status?.lastVerifiedTime?.date, verified >= requested { return nil }
        if let completed = backup.status?.completionTime?.date, completed >= requested { return nil }
        return requested
    }

    /// The backups of `schedule` (by label), for a new verification run.
    static func backups(of schedule: TalosEtcdBackupSchedule, in backups: ObjectClient<TalosEtcdBackup>) -> [ObjectKey] {
        guard let name = schedule.metadata.name else { return [] }
        return backups.cachedList(namespace: schedule.metadata.namespace)
            .filter { $0.metadata.labels?[TalosEtcdBackupSchedule.backupScheduleLabel] == name }.map(\.key)
    }

    public func reconcile(_ key: ObjectKey) async throws -> ReconcileResult {
        guard let backup = backups.cached(key), due(backup) != nil, let status = backup.status, let filename = status.filename else {
            return .done
        }
        let namespace = backup.metadata.namespace ?? "default"
        let spec = backup.spec.withDefaults()
        let object = BackupReconciler.storedObjects(of: backup, filename: filename)
        let outcome: (result: VerificationResult.Outcome, reason: ConditionReason, message: String)
        let started = clock.now()  // a read that spans a run's time answers the run before it
        do {
            let configuration = try await credentials.s3Configuration(spec.backupStorage.s3, namespace: namespace)
            let destination = BackupDestination(s3: configuration, bucket: status.bucket ?? spec.backupStorage.s3.bucket, key: filename)
            try await endpoints.checkStore(destination)
            let expected = StoredBackupVerification.Expected(
                size: status.size, sha256: status.sha256,
                revision: status.compression == nil && status.encryptedTo == nil ? status.revision : nil,
                totalKeys: status.compression == nil && status.encryptedTo == nil ? status.totalKeys : nil,
                state: status.stateFilename.flatMap { key in status.stateSHA256.map { StoredState(key: key, sha256: $0) } })
            let transfer = self.transfer, bandwidth = self.bandwidth
            // The attempt bound, plus the time the object takes at the bandwidth limit.
            let reading = Duration.seconds(max(0, status.size ?? 0) / Int64(bandwidth.bytesPerSecond))
            let verified = try await withDeadline(timeout + reading, "verifying \(object)", clock: clock.timers) {
                try await transfer.verify(destination, expected: expected) { bytes in try await bandwidth.take(bytes) }
            }
            var what = "\(object): \(verified.size) bytes, sha256 \(verified.sha256)\(status.sha256 == nil ? " (no recorded SHA-256: size compared)" : " as recorded")"
            if let revision = verified.revision, let keys = verified.totalKeys { what += "; etcd's trailer and the bbolt structure hold (revision \(revision), \(keys) keys)" }
            if verified.stateChecked { what += "; its state as recorded" }
            if status.encryptedTo != nil { what += " (encrypted: checked as stored bytes)" }
            outcome = (.passed, .verificationPassed, what)
        } catch where Task.isCancelled {
            throw CancellationError()
        } catch let failure as VerificationFailure {
            let reason: ConditionReason = switch failure.kind {
            case .missing: .objectMissing
            case .changed: .objectChanged
            case .invalid: .snapshotInvalid
            }
            outcome = (.failed, reason, failure.message)
        } catch {
            let failure = BackupFailure.classify(error)
            try await record(backup, result: .error, reason: .verificationError,
                             message: "could not verify \(object): \(failure.message); retrying", at: nil)
            throw failure
        }
        try await record(backup, result: outcome.result, reason: outcome.reason, message: outcome.message, at: started)
        return .done
    }

    /// Writes the outcome to the backup's status (conflicts retried on a fresh read), counts it,
    /// and sends an Event for a failure, or for an error that is new. A verdict (`verifiedAt`
    /// set) replaces `verification`; an error only marks the condition Unknown and keeps the
    /// last verdict, so a backup found broken stays counted as failed (and alerting) while the
    /// store cannot be read. Nothing is written or sent for a backup that is being deleted or
    /// is gone (its object may have been deleted under the read).
    private func record(_ backup: TalosEtcdBackup, result: VerificationResult.Outcome, reason: ConditionReason, message: String,
                        at verifiedAt: Date?) async throws {
        let now = clock.now()
        let conditionStatus: ConditionStatus = switch result {
        case .passed: .true
        case .failed: .false
        case .error: .unknown
        }
        var current = false, conditionChanged = false
        _ = try await backups.modify(backup.key, .status, from: backup) { object in
            current = object.metadata.deletionTimestamp == nil && object.status?.phase == .succeeded
            guard current else { return }
            if let verifiedAt {
                object.status?.lastVerifiedTime = KubeTime(verifiedAt)
                object.status?.verification = VerificationResult(result: result, message: message)
            } else if object.status?.verification?.result == nil || object.status?.verification?.result == .error {
                object.status?.verification = VerificationResult(result: result, message: message)
            }
            var conditions = object.status?.conditions ?? []
            conditionChanged = conditions.set(type: ConditionType.verified, status: conditionStatus, reason: reason, message: message,
                                      observedGeneration: object.metadata.generation, now: now)
            object.status?.conditions = conditions
        }
        guard current else { return }
        metrics.recordVerification(backup, result: result, reason: reason)
        switch result {
        case .passed:
            logger.info("backup verified", metadata: ["backup": "\(backup.key)"])
        case .failed:
            logger.error("backup verification failed", metadata: ["backup": "\(backup.key)", "reason": "\(reason)", "problem": "\(message)"])
            events.record(.init(backup), type: .warning, reason: reason, action: EventAction.verify, note: message)
        case .error:
            if conditionChanged {  // not a retry of the same error
                events.record(.init(backup), type: .warning, reason: reason, action: EventAction.verify, note: message)
            }
        }
    }
}
