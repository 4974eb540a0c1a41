import BackupResolution
import CustomResources
import Foundation
import KubernetesClient
import Logging
import S3
import SnapshotPipeline
import Timestamps
import Waiting

/// Adopts what a bucket already holds: after a restore of the management cluster, or a move to
/// a new one, the schedule's objects have no `TalosEtcdBackup`. For each object under the
/// schedule's key prefix (`<prefix>/<namespace>/<controlplane>/`) named as this schedule names
/// its backups (`<schedule>-<seconds>` or `<schedule>-manual-<seconds>`, then `.db`, `.zst`,
/// `.age`), it creates the backup (labelled and owned like the scheduled ones, annotated with
/// where it came from) and writes its status from the object's metadata (phase Succeeded,
/// reason `Adopted`), so retention, `restore --backup` and `verify --backup` work for it.
/// The control plane's state stored beside a snapshot (`NAME.state.yaml[.zst][.age]`) comes back
/// with it: the snapshot's metadata names it, and the adopted status records it.
/// Idempotent: an existing backup is left alone (one left without status by an interrupted
/// run gets it now). Never writes to the bucket. The backup controller never takes a snapshot
/// for an adopted backup, and deleting one deletes its object (unless `deletionPolicy:
/// Retain`) only if the object still carries the UID it was adopted with.
public struct BackupAdoption: Sendable {
    let client: any KubernetesAPI
    let credentials: CredentialResolver
    let logger: Logger

    public init(client: any KubernetesAPI, secrets: any SecretReader, ambientCredentials: AmbientS3Access = .off, logger: Logger = Logger(label: "adopt")) {
        self.client = client
        self.credentials = CredentialResolver(secrets: secrets, ambient: ambientCredentials)
        self.logger = logger
    }

    /// What one run did with each object it looked at.
    public struct Outcome: Sendable, Equatable {
        /// Backups created (or completed) for objects.
        public var adopted: [String] = []
        /// Objects that already have their backup.
        public var present: [String] = []
        /// Keys left alone, with why.
        public var skipped: [String: String] = [:]
        /// State objects (the control plane's state beside a snapshot), by key, with the backup
        /// whose status records them: they come with their snapshot, never as backups.
        public var states: [String: String] = [:]
    }

    /// How long one run may take by default: listing, a HEAD per object and a create per
    /// backup, whatever the store and the API server do (each request has its own bound too).
    public static let defaultTimeLimit: Duration = .seconds(1800)

    /// Adopts the objects of schedule `namespace/name`. Throws `DeadlineExceeded` when the run
    /// takes longer than `limit` on `clock` (a store that trickles its answers, a prefix with
    /// too many objects); the backups adopted by then stay, and a second run goes on from there.
    public func adopt(
        schedule name: String, namespace: String, now: Date,
        within limit: Duration = defaultTimeLimit, clock: any Clock<Duration> = TimerClock()
    ) async throws -> Outcome {
        try await withDeadline(limit, "adopting the objects of schedule \(namespace)/\(name)", clock: clock) {
            try await self.adoptUnbounded(schedule: name, namespace: namespace, now: now)
        }
    }

    private func adoptUnbounded(schedule name: String, namespace: String, now: Date) async throws -> Outcome {
        let schedule = try await client.get(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: namespace, name: name)
        let spec = schedule.spec.backupTemplate.spec.withDefaults()
        let configuration = try await credentials.s3Configuration(spec.backupStorage.s3, namespace: namespace)
        let prefix = BackupDestination.keyPrefix(prefix: spec.backupStorage.s3.prefix ?? Defaults.s3Prefix, namespace: namespace,
                                                 controlPlane: spec.talosControlPlaneRef.name)
        let bucket = spec.backupStorage.s3.bucket
        return try await S3Client.withClient(configuration, logger: logger) { s3 in
            var outcome = Outcome()
            for object in try await s3.listAllObjects(bucket: bucket, prefix: prefix) {
                let file = String(object.key.dropFirst(prefix.count))
                if !file.contains("/"), let owner = StoredState.backupName(ofStateKey: file), Self.isNamedBy(schedule: name, owner) {
                    outcome.states[object.key] = owner
                    continue
                }
                let encoding = SnapshotEncoding(fileName: file)
                let backupName = String(file.dropLast(encoding.fileExtension.count))
                guard file.hasSuffix(encoding.fileExtension), !file.contains("/"), Self.isNamedBy(schedule: name, backupName) else {
                    outcome.skipped[object.key] = "not named as schedule \(name) names its backups (\(name)-<unix seconds>\(encoding.fileExtension))"
                    continue
                }
                let existing = try await existingBackup(backupName, namespace: namespace)
                if let existing, existing.status?.phase != nil || existing.metadata.annotations?[TalosEtcdBackup.adoptedFromAnnotation] == nil {
                    outcome.present.append(backupName)
                    continue
                }
                let head = try await s3.headObject(bucket: bucket, key: object.key)
                let url = "s3://\(bucket)/\(object.key)"
                var backup: TalosEtcdBackup
                if let existing {
                    backup = existing
                } else {
                    backup = try await create(backupName, from: url, head: head, schedule: schedule)
                }
                backup.status = Self.status(of: head, key: object.key, bucket: bucket, url: url, now: now)
                _ = try await client.updateStatus(backup, TalosEtcdBackup.resourceType, namespace: namespace, name: backupName)
                logger.info("adopted", metadata: ["backup": "\(namespace)/\(backupName)", "object": "\(url)"])
                outcome.adopted.append(backupName)
            }
            return outcome
        }
    }

    /// `<schedule>-<digits>` or `<schedule>-manual-<digits>`.
    static func isNamedBy(schedule: String, _ name: String) -> Bool {
        guard name.hasPrefix(schedule + "-") else { return false }
        var rest = name.dropFirst(schedule.count + 1)
        if rest.hasPrefix("manual-") { rest = rest.dropFirst("manual-".count) }
        return !rest.isEmpty && rest.allSatisfy(\.isASCII) && rest.allSatisfy(\.isNumber)
    }

    private func existingBackup(_ name: String, namespace: String) async throws -> TalosEtcdBackup? {
        do {
            return try await client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace, name: name)
        } catch let error as KubernetesError where error.isNotFound {
            return nil
        }
    }

    private func create(_ name: String, from url: String, head: S3ObjectInfo, schedule: TalosEtcdBackupSchedule) async throws -> TalosEtcdBackup {
        var annotations = [TalosEtcdBackup.adoptedFromAnnotation: url]
        annotations[TalosEtcdBackup.adoptedObjectUIDAnnotation] = head.metadata[StoredBackup.MetadataKey.owner]
        annotations[TalosEtcdBackupSchedule.scheduledTimeAnnotation] = TalosEtcdBackupSchedule.runTime(ofBackupNamed: name).map { KubeTime($0).description }
        return try await client.create(schedule.backup(named: name, annotations: annotations), TalosEtcdBackup.resourceType,
                                       namespace: schedule.metadata.namespace)
    }

    /// Succeeded, with what the object's metadata records (a plain object without a record:
    /// its size only; `verify --backup` then checks it by its own trailer and structure).
    static func status(of head: S3ObjectInfo, key: String, bucket: String, url: String, now: Date) -> TalosEtcdBackupStatus {
        let record = StoredBackup(metadata: head.metadata)
        let stored = head.lastModified.flatMap(HTTPDate.parse) ?? now
        var status = TalosEtcdBackupStatus()
        status.phase = .succeeded
        status.filename = key
        status.bucket = bucket
        if let record {
            record.apply(to: &status)
            status.node = head.metadata[StoredBackup.MetadataKey.node]  // absent stays absent
        } else {
            // No complete record: what the object itself says (its size, a partial record's
            // compression and node); verify and restore then check it by its own trailer.
            status.size = head.size
            status.compression = head.metadata[StoredBackup.MetadataKey.compression]
            status.node = head.metadata[StoredBackup.MetadataKey.node]
            // A plain snapshot's metadata is written before its upload and names its state.
            let state = StoredState(metadata: head.metadata)
            status.stateFilename = state?.key
            status.stateSHA256 = state?.sha256
        }
        if status.stateFilename != StoredState.key(besideSnapshot: key) {
            // Only the state beside this snapshot is its state: a record naming another key is not trusted.
            status.stateFilename = nil
            status.stateSHA256 = nil
        }
        // Under S3 Object Lock (the bucket's default, or an earlier objectLock), retention must
        // wait for it as for the operator's own backups.
        if head.isLocked(at: now), let until = head.retainUntilDate { status.lockedUntil = KubeTime(until) }
        status.startTime = KubeTime(stored)
        status.completionTime = KubeTime(stored)
        status.attempts = 0
        var conditions: [Condition] = []
        conditions.set(type: ConditionType.ready, status: .true, reason: ConditionReason.adopted,
                       message: "adopted \(url), stored \(KubeTime(stored)) (its record: \(record == nil ? "none in the object's metadata" : "from the object's metadata"))", now: now)
        conditions.set(type: ConditionType.progressing, status: .false, reason: ConditionReason.adopted, message: "the backup is complete", now: now)
        status.conditions = conditions
        return status
    }
}
