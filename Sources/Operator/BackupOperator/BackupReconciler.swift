import Age
import BackupResolution
import ConfigurationFiles
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import Logging
import S3
import SnapshotPipeline
import Synchronization
import TalosAPI
import Waiting

/// Reconciles one `TalosEtcdBackup`: takes its snapshot once, reports it, and deletes its
/// object when the backup is deleted (docs/design.md, Backup controller).
///
/// - A backup gets the finalizer `talos.alperen.cloud/etcd-backup` before anything is stored.
/// - Each attempt: credentials from Secrets (read with GET, each Secret once per attempt, never
///   kept past it or logged), then the
///   ``SnapshotTransfer``. Status goes Running (with `attempts`, `startTime`, `Progressing`)
///   before the transfer and Succeeded or Failed after it, through the status subresource.
/// - A failed attempt is retried after 10 s, then 20 s (exponential backoff) up to
///   ``maxAttempts`` in all, then the backup is Failed with the last failure's reason. Failures
///   retrying cannot fix (an invalid spec, an object that is not ours) fail at once.
/// - A Succeeded or Failed backup is never run again. A Running backup found by a process that
///   did not start it (the previous one died or lost the lease) is run again under the same key,
///   unless all ``maxAttempts`` were started already (a process killed during every attempt,
///   for example out of memory): then it fails with `AttemptsExhausted`.
/// - Fencing: an attempt writes its outcome only while the status still names it (`attempts`
///   and `attemptedBy`, this reconciler's ``instance``). A process that stalled while another
///   took over and finished the backup drops its late result with a log line.
/// - A shutdown (task cancellation) mid-transfer aborts the upload and leaves the status as it
///   is, so the next leader picks the backup up.
///
/// Deletion always finishes, and never loses a stored object silently:
/// - a backup that never completed an upload goes without needing the store (multipart uploads
///   an attempt may have left are aborted if the store answers within ``cleanUpBound``);
/// - a Succeeded backup's object is deleted where `status.bucket`/`status.filename` say it was
///   stored; transient failures (unreachable store, 5xx, throttling) keep the finalizer and
///   retry with backoff; permanent ones (credentials Secret or key gone, bucket gone, access
///   denied, and an S3 Object Lock that holds: Events `ObjectLocked`) retry for
///   ``objectDeletionTimeout``, then the backup goes with a Warning Event `ObjectLeftInStore`
///   naming the object and why (a lock is never bypassed);
/// - with `deletionPolicy: Retain`, a Succeeded backup's object stays: the backup goes at once
///   with a Normal Event `ObjectRetained` naming it (no request to the store).
public final class BackupReconciler: Reconciler {
    public static let finalizer = "talos.alperen.cloud/etcd-backup"
    public static let maxAttempts = 3
    /// Backoff before the second attempt (seconds of the operator's clock); doubles after.
    public static let retryBackoff = Backoff(base: .seconds(10), cap: .seconds(600))
    /// How long, after a backup's deletion, a stored object that cannot be deleted for a reason
    /// waiting cannot fix keeps the backup (10 minutes by default).
    public static let defaultObjectDeletionTimeout: TimeInterval = 600
    /// How long the deletion of a backup that never completed an upload waits for the store to
    /// abort what an attempt may have left (best effort; the deletion goes on either way).
    public static let cleanUpBound = Duration.seconds(5)
    /// How long one attempt may take, from reading its Secrets to the stored object's record
    /// (`--backup-attempt-timeout-seconds`): an hour. The pipeline takes about 20 s per GiB
    /// here (README, Performance), so an hour leaves room for an 8 GiB database (etcd's
    /// largest recommended quota) over a link of 3 MiB/s. Past it the attempt is cancelled (its upload aborted) and fails
    /// with `AttemptTimedOut`, retried like any other failure.
    public static let defaultAttemptTimeout = Duration.seconds(3600)
    /// How long the deletion of a stored object may take (listing and aborting stray uploads,
    /// HEAD, DELETE) before it counts as a transient failure and is retried with backoff.
    public static let deletionBound = Duration.seconds(300)

    /// This operator process, as `status.attemptedBy` names it.
    public let instance: String
    public let objectDeletionTimeout: TimeInterval
    public let attemptTimeout: Duration
    public let endpoints: EndpointGuard

    /// Backups: read from the informer's store, written through the API.
    let backups: ObjectClient<TalosEtcdBackup>
    let credentials: CredentialResolver
    let transfer: any SnapshotTransfer
    let events: EventRecorder
    let clock: OperatorClock
    let metrics: BackupMetrics
    let logger: Logger
    /// When each backup in backoff may try again. Kept in memory, like controller-runtime's
    /// rate limiter: after a restart the next attempt starts without waiting.
    private let notBefore = Mutex<[ObjectKey: Date]>([:])

    public init(backups: ObjectClient<TalosEtcdBackup>, secrets: any SecretReader, ambientCredentials: AmbientS3Access = .off,
                transfer: any SnapshotTransfer, events: EventRecorder,
                clock: OperatorClock = .system, instance: String = LeaderElector.defaultIdentity(),
                objectDeletionTimeout: TimeInterval = defaultObjectDeletionTimeout, attemptTimeout: Duration = defaultAttemptTimeout,
                endpoints: EndpointGuard = EndpointGuard(),
                metrics: BackupMetrics = BackupMetrics(), logger: Logger = Logger(label: "backup-controller")) {
        self.endpoints = endpoints
        self.instance = instance
        self.objectDeletionTimeout = objectDeletionTimeout
        self.attemptTimeout = attemptTimeout
        self.backups = backups
        self.credentials = CredentialResolver(secrets: secrets, ambient: ambientCredentials)
        self.transfer = transfer
        self.events = events
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    public func reconcile(_ key: ObjectKey) async throws -> ReconcileResult {
        // The cached copy may be behind; that is safe because an attempt starts with a status
        // write carrying its resourceVersion, which a newer object refuses (see `attempt`).
        guard var backup = backups.cached(key) else {
            notBefore.withLock { _ = $0.removeValue(forKey: key) }
            return .done
        }
        if backup.metadata.deletionTimestamp != nil {
            return try await finalize(backup)
        }
        if !(backup.metadata.finalizers ?? []).contains(Self.finalizer) {
            guard let updated = try await backups.addFinalizer(Self.finalizer, to: backup) else { return .done }
            backup = updated
        }
        if backup.status?.phase?.isFinished == true { return .done }
        if backup.metadata.annotations?[TalosEtcdBackup.adoptedFromAnnotation] != nil {
            return .done  // `adopt` writes its status (Succeeded); it is never taken
        }
        if let started = backup.status?.attempts, started >= Self.maxAttempts {
            // Not finished, yet every attempt was started: each was interrupted (the process
            // died or lost its lease during it). A fourth would likely die the same way.
            let failure = BackupFailure(
                reason: BackupFailure.Reason.attemptsExhausted,
                message: "all \(Self.maxAttempts) attempts were started and none finished: the operator stopped during each (look for restarts, for example OOMKilled, in the operator's pods)",
                retryable: false)
            try await fail(backup, failure, attempt: started, fence: nil)
            return .done
        }
        if let wait = notBefore.withLock({ $0[key] }), wait > clock.now() {
            return .requeue(after: clock.realDuration(of: wait.timeIntervalSince(clock.now())))
        }
        return try await attempt(backup)
    }

    // MARK: One attempt

    private func attempt(_ backup: TalosEtcdBackup) async throws -> ReconcileResult {
        let key = backup.key
        let namespace = key.namespace ?? "default"
        let spec = backup.spec.withDefaults()
        let s3 = spec.backupStorage.s3
        let objectKey = Self.objectKey(of: backup, spec: spec)
        let attempt = (backup.status?.attempts ?? 0) + 1
        let generation = backup.metadata.generation

        // Problems no retry can fix end the backup before it starts.
        if let failure = Self.permanentProblem(backup) {
            try await fail(backup, failure, attempt: attempt, fence: nil)
            return .done
        }

        let started = clock.now()
        let running: TalosEtcdBackup
        do {
            guard let written = try await backups.modify(key, .status, from: backup, { object in
                // On a conflict this runs again on a fresh read: if that shows the backup
                // finished, or another attempt counted, this one must not start.
                guard object.status?.phase?.isFinished != true, (object.status?.attempts ?? 0) == attempt - 1 else {
                    throw AttemptSuperseded()
                }
                var status = object.status ?? TalosEtcdBackupStatus()
                status.phase = .running
                status.attempts = attempt
                status.attemptedBy = instance
                status.startTime = status.startTime ?? KubeTime(started)
                var conditions = status.conditions ?? []
                conditions.set(type: ConditionType.progressing, status: .true, reason: ConditionReason.running,
                               message: "attempt \(attempt) of \(Self.maxAttempts): streaming a snapshot of \(spec.talosControlPlaneRef.name) to s3://\(s3.bucket)/\(objectKey)",
                               observedGeneration: generation, now: started)
                conditions.set(type: ConditionType.ready, status: .false, reason: ConditionReason.running, message: "the backup is being taken",
                               observedGeneration: generation, now: started)
                status.conditions = conditions
                object.status = status
            }) else { return .done }
            running = written
        } catch is AttemptSuperseded {
            return .done
        }
        metrics.recordAttempt(backup)
        if attempt > 1 {
            // The first attempt's start is in the Progressing condition; a retry's gets an Event
            // too, beside the Warning of the attempt before it.
            events.record(.init(backup), type: .normal, reason: ConditionReason.started, action: EventAction.backup,
                          note: "attempt \(attempt) of \(Self.maxAttempts): snapshot of \(spec.talosControlPlaneRef.name) to s3://\(s3.bucket)/\(objectKey)")
        }

        do {
            let stored = try await bounded(attempt: attempt) { [self] in
                let credentials = self.credentials.readingEachSecretOnce()
                let (talos, talosSource) = try await talosContext(spec, namespace: namespace, credentials: credentials)
                let destination = try await destination(s3, key: objectKey, namespace: namespace, credentials: credentials)
                try await endpoints.check(s3: destination, talos: talos, talosSource: talosSource)
                let plan = try await encodingPlan(spec.backupStorage, namespace: namespace, credentials: credentials)
                let state = try await credentials.stateManifest(spec, namespace: namespace)
                return try await transfer.store(talos: talos, destination: destination, plan: plan, owner: backup.metadata.uid ?? "",
                                                state: state)
            }
            try await succeed(running, stored, attempt: attempt, objectKey: objectKey)
            notBefore.withLock { _ = $0.removeValue(forKey: key) }
            return .done
        } catch let stale as StaleAttempt {
            dropSuperseded("result", of: key, attempt: attempt, stale)
            return .done
        } catch where Task.isCancelled {
            // Shutting down: the upload was aborted; the next leader runs the backup again.
            logger.info("backup interrupted by shutdown; it will run again", metadata: ["backup": "\(key)"])
            throw CancellationError()
        } catch {
            let failure = BackupFailure.classify(error)
            if !(error is BackupFailure || error is PipelineFailure) {
                // The error itself, for whoever runs the operator: the status says less (a
                // connection error is only "unreachable" there).
                // Text from outside: cut, on one line.
                let cause = String(String(describing: error).prefix(2_000)).replacingOccurrences(of: "\n", with: "\\n")
                logger.warning("backup attempt failed", metadata: ["backup": "\(key)", "attempt": "\(attempt)", "cause": "\(cause)"])
            }
            if !failure.retryable || attempt >= Self.maxAttempts {
                do {
                    try await fail(running, failure, attempt: attempt, fence: attempt)
                } catch let stale as StaleAttempt {
                    dropSuperseded("failure", of: key, attempt: attempt, stale)
                }
                notBefore.withLock { _ = $0.removeValue(forKey: key) }
                return .done
            }
            let delay = Self.retryBackoff.delay(retry: attempt - 1) / .seconds(1)
            let retryAt = clock.now() + delay
            notBefore.withLock { $0[key] = retryAt }
            logger.warning("backup attempt failed; retrying", metadata: [
                "backup": "\(key)", "attempt": "\(attempt)", "reason": "\(failure.reason)", "error": "\(failure.message)"])
            let now = clock.now()
            do {
                try await backups.modify(key, .status, from: running) { object in
                    try self.checkFence(object, attempt: attempt)
                    var conditions = object.status?.conditions ?? []
                    conditions.set(type: ConditionType.progressing, status: .true, reason: ConditionReason.retrying,
                                   message: "attempt \(attempt) of \(Self.maxAttempts) failed (\(failure.reason): \(failure.message)); next attempt at \(KubeTime(retryAt))",
                                   observedGeneration: generation, now: now)
                    object.status?.conditions = conditions
                }
            } catch let stale as StaleAttempt {
                dropSuperseded("failure", of: key, attempt: attempt, stale)
                notBefore.withLock { _ = $0.removeValue(forKey: key) }
                return .done
            }
            events.record(.init(backup), type: .warning, reason: failure.reason, action: EventAction.backup,
                                note: "attempt \(attempt) of \(Self.maxAttempts) failed: \(failure.message); retrying")
            return .requeue(after: clock.realDuration(of: delay))
        }
    }

    /// Runs an attempt's work under ``attemptTimeout``: past it the work is cancelled and the
    /// attempt fails with `AttemptTimedOut`.
    private func bounded(attempt: Int, _ work: @escaping @Sendable () async throws -> StoredBackup) async throws -> StoredBackup {
        let label = "backup attempt \(attempt)", limit = attemptTimeout
        do {
            return try await withDeadline(limit, label, clock: clock.timers, operation: work)
        } catch let exceeded as DeadlineExceeded where exceeded.operation == label && !Task.isCancelled {
            throw BackupFailure(
                reason: BackupFailure.Reason.attemptTimedOut,
                message: "the attempt did not finish within \(limit.components.seconds) s (--backup-attempt-timeout-seconds); it was cancelled and its upload aborted")
        }
    }

    /// Where an attempt of `backup` stores its object, from its spec (docs/design.md, Names,
    /// labels and ownership): the key's suffixes follow the spec's compression and encryption,
    /// so the key is known without reading the recipients Secret. `spec` is the backup's spec
    /// with its defaults, as the caller already has it (defaults are applied once per reconcile).
    static func objectKey(of backup: TalosEtcdBackup, spec: TalosEtcdBackupSpec) -> String {
        BackupDestination.objectKey(
            prefix: spec.backupStorage.s3.prefix ?? Defaults.s3Prefix, namespace: backup.metadata.namespace ?? "default",
            controlPlane: spec.talosControlPlaneRef.name, backupName: backup.metadata.name ?? "",
            encoding: SnapshotEncoding(compressed: spec.backupStorage.compression != nil, encrypted: spec.backupStorage.encryption != nil))
    }

    /// The spec's compression and encryption, with the recipients resolved: those listed and
    /// those in the recipients Secret (`age -R` format). A missing Secret or key is
    /// `EncryptionConfigNotFound`; a Secret line that is not a recipient, or a Secret with no
    /// recipient, is `EncryptionConfigInvalid`, naming the Secret, key and line.
    private func encodingPlan(_ storage: BackupStorage, namespace: String, credentials: CredentialResolver) async throws -> SnapshotEncodingPlan {
        var plan = SnapshotEncodingPlan(compressionLevel: storage.compression.map { $0.level ?? Defaults.zstdLevel })
        guard let age = storage.encryption?.age else { return plan }
        // Listed recipients passed validation (permanentProblem) before the attempt started.
        plan.recipients = try (age.recipients ?? []).map { try AgeRecipient(parsing: $0) }
        if let ref = age.recipientsSecretRef {
            let field = "spec.backupStorage.encryption.age.recipientsSecretRef"
            let text = try await credentials.value(of: (ref.name, ref.key), field: field, namespace: namespace,
                                                   missing: BackupFailure.Reason.encryptionConfigNotFound)
            let source = "Secret \(namespace)/\(ref.name) key \"\(ref.key)\" (named by \(field))"
            let listed: [AgeRecipient]
            do {
                listed = try AgeRecipient.parseList(text)
            } catch AgeError.invalidKey(let problem) {
                throw BackupFailure(reason: BackupFailure.Reason.encryptionConfigInvalid, message: "\(source): \(problem)")
            }
            guard !listed.isEmpty else {
                throw BackupFailure(reason: BackupFailure.Reason.encryptionConfigInvalid,
                                    message: "\(source) holds no age1... recipient: nothing would be able to decrypt the backup")
            }
            plan.recipients += listed
        }
        return plan
    }

    /// Logs that the outcome of `attempt` is dropped because another attempt superseded it.
    private func dropSuperseded(_ outcome: String, of key: ObjectKey, attempt: Int, _ stale: StaleAttempt) {
        logger.warning("dropping the \(outcome) of a superseded attempt", metadata: ["backup": "\(key)", "attempt": "\(attempt)", "now": "\(stale.current)"])
    }

    /// What makes this backup impossible to take, whatever the retries.
    static func permanentProblem(_ backup: TalosEtcdBackup) -> BackupFailure? {
        let errors = backup.validate()
        if !errors.isEmpty {
            return BackupFailure(reason: BackupFailure.Reason.invalidSpec,
                                 message: errors.map(\.description).joined(separator: "; "), retryable: false)
        }
        return nil
    }

    /// The talosconfig of the spec's control plane, and the Secret it came from.
    private func talosContext(_ spec: TalosEtcdBackupSpec, namespace: String, credentials: CredentialResolver) async throws -> (TalosContext, source: String) {
        let (text, source) = try await credentials.talosconfig(controlPlane: spec.talosControlPlaneRef.name, namespace: namespace)
        do {
            return (try Talosconfig.parse(text, source: source), source)
        } catch let error as ConfigurationError {
            throw BackupFailure(reason: BackupFailure.Reason.talosConfigInvalid, message: error.description)
        }
    }

    /// Where `key` goes, with the S3 credentials read from their Secrets (each Secret once).
    private func destination(_ s3: S3Storage, key: String, namespace: String, credentials: CredentialResolver) async throws -> BackupDestination {
        BackupDestination(s3: try await credentials.s3Configuration(s3, namespace: namespace), bucket: s3.bucket, key: key)
    }

    // MARK: Outcomes

    /// Throws ``StaleAttempt`` unless `object`'s status still records attempt `attempt` of this
    /// instance, unfinished.
    private func checkFence(_ object: TalosEtcdBackup, attempt: Int) throws {
        let status = object.status
        guard status?.phase?.isFinished != true, status?.attempts == attempt, status?.attemptedBy == instance else {
            throw StaleAttempt(current: "phase \(status?.phase?.rawValue ?? "none"), attempt \(status?.attempts ?? 0) by \(status?.attemptedBy ?? "nobody")")
        }
    }

    private func succeed(_ backup: TalosEtcdBackup, _ stored: StoredBackup, attempt: Int, objectKey: String) async throws {
        let now = clock.now()
        let generation = backup.metadata.generation
        let bucket = backup.spec.backupStorage.s3.bucket
        let written = try await backups.modify(backup.key, .status, from: backup) { object in
            try self.checkFence(object, attempt: attempt)
            var status = object.status ?? TalosEtcdBackupStatus()
            status.phase = .succeeded
            status.filename = objectKey
            status.bucket = bucket
            stored.apply(to: &status)
            status.completionTime = KubeTime(now)
            var conditions = status.conditions ?? []
            let contents = stored.revision.map { revision in ", etcd revision \(revision), \(stored.totalKeys ?? 0) keys" } ?? ""
            let message = "stored s3://\(bucket)/\(objectKey): \(stored.size) bytes from node \(stored.node), sha256 \(stored.sha256)\(contents)"
            conditions.set(type: ConditionType.ready, status: .true, reason: ConditionReason.succeeded, message: message, observedGeneration: generation, now: now)
            conditions.set(type: ConditionType.progressing, status: .false, reason: ConditionReason.succeeded, message: "the backup is complete", observedGeneration: generation, now: now)
            conditions.remove(type: ConditionType.failed)
            status.conditions = conditions
            object.status = status
        }
        if let written { recordOutcome(written, reason: ConditionReason.succeeded, size: stored.size) }
        logger.info("backup stored", metadata: ["backup": "\(backup.key)", "object": "s3://\(bucket)/\(objectKey)", "size": "\(stored.size)", "node": "\(stored.node)"])
        events.record(.init(backup), type: .normal, reason: ConditionReason.succeeded, action: EventAction.backup,
                            note: "stored s3://\(bucket)/\(objectKey) (\(stored.size) bytes, sha256 \(stored.sha256)) from node \(stored.node)")
    }

    /// Fails the backup. With `fence`, only while the status still records that attempt of
    /// this instance (``StaleAttempt`` otherwise).
    private func fail(_ backup: TalosEtcdBackup, _ failure: BackupFailure, attempt: Int, fence: Int?) async throws {
        let now = clock.now()
        let generation = backup.metadata.generation
        let message = failure.retryable
            ? "\(failure.message) (gave up after \(attempt) attempts)" : failure.message
        var decided = false
        let written = try await backups.modify(backup.key, .status, from: backup) { object in
            if let fence { try self.checkFence(object, attempt: fence) }
            guard object.status?.phase?.isFinished != true else { return }  // a fresh read: already decided
            decided = true
            var status = object.status ?? TalosEtcdBackupStatus()
            status.phase = .failed
            status.attempts = attempt
            status.startTime = status.startTime ?? KubeTime(now)
            status.completionTime = KubeTime(now)
            var conditions = status.conditions ?? []
            conditions.set(type: ConditionType.failed, status: .true, reason: failure.reason, message: message, observedGeneration: generation, now: now)
            conditions.set(type: ConditionType.ready, status: .false, reason: failure.reason, message: message, observedGeneration: generation, now: now)
            conditions.set(type: ConditionType.progressing, status: .false, reason: failure.reason, message: "the backup failed", observedGeneration: generation, now: now)
            status.conditions = conditions
            object.status = status
        }
        if decided, let written { recordOutcome(written, reason: failure.reason, size: nil) }
        logger.error("backup failed", metadata: ["backup": "\(backup.key)", "reason": "\(failure.reason)", "error": "\(failure.message)"])
        events.record(.init(backup), type: .warning, reason: failure.reason, action: EventAction.backup, note: "backup failed: \(message)")
    }

    /// Counts a finished backup (its duration from its first attempt's start).
    private func recordOutcome(_ backup: TalosEtcdBackup, reason: ConditionReason, size: Int64?) {
        guard let phase = backup.status?.phase else { return }
        let start = backup.status?.startTime?.date, end = backup.status?.completionTime?.date
        let duration = start.flatMap { start in end.map { $0.timeIntervalSince(start) } } ?? 0
        metrics.recordOutcome(backup, result: phase, reason: reason, duration: duration, size: size)
    }

    // MARK: Deletion

    /// Lets a deleted backup go once its stored object is deleted, or recorded as left behind.
    private func finalize(_ backup: TalosEtcdBackup) async throws -> ReconcileResult {
        guard (backup.metadata.finalizers ?? []).contains(Self.finalizer) else { return .done }
        let policy = backup.spec.deletionPolicy ?? Defaults.deletionPolicy
        if backup.status?.phase == .succeeded, let filename = backup.status?.filename, policy != .delete {
            // Retain, or a value this version does not know: an object is never deleted on a
            // policy the operator does not understand.
            let object = Self.storedObjects(of: backup, filename: filename)
            let why = switch policy {
            case .retain, .delete: "deletionPolicy Retain"
            case .unknown(let value): "deletionPolicy \"\(value.prefix(100))\" is not one this operator supports, so nothing is deleted"
            }
            events.record(.init(backup), type: .normal, reason: ConditionReason.objectRetained, action: EventAction.delete,
                          note: "kept in the store (\(why)): \(object)")
        } else if backup.status?.phase == .succeeded, let filename = backup.status?.filename {
            let bucket = backup.status?.bucket ?? backup.spec.backupStorage.s3.bucket
            let object = Self.storedObjects(of: backup, filename: filename)
            do {
                var destination = try await destination(backup.spec.backupStorage.s3, key: filename, namespace: backup.metadata.namespace ?? "default",
                                                        credentials: credentials.readingEachSecretOnce())
                destination.bucket = bucket
                try await endpoints.checkStore(destination)
                let transfer = self.transfer, target = destination
                let owner = backup.metadata.annotations?[TalosEtcdBackup.adoptedObjectUIDAnnotation] ?? backup.metadata.uid ?? ""
                try await withDeadline(Self.deletionBound, "deleting \(object)", clock: clock.timers) {
                    try await transfer.delete(target, owner: owner)
                }
                events.record(.init(backup), type: .normal, reason: ConditionReason.deleted, action: EventAction.delete, note: "deleted \(object)")
            } catch where Task.isCancelled {
                throw CancellationError()
            } catch {
                let failure = BackupFailure.classify(error)
                guard BackupFailure.isPermanentStoreFailure(error) else {
                    events.record(.init(backup), type: .warning, reason: ConditionReason.deleteFailed, action: EventAction.delete,
                                        note: "could not delete \(object): \(failure.message); retrying")
                    throw failure  // transient: the work queue retries with backoff
                }
                let deleted = backup.metadata.deletionTimestamp?.date ?? clock.now()
                let giveUpAt = deleted + objectDeletionTimeout
                // A lock's refusal is its own reason (ObjectLocked), so it reads apart from a
                // store that refuses the credentials.
                let locked = failure.reason == ConditionReason.objectLocked
                if clock.now() < giveUpAt {
                    events.record(.init(backup), type: .warning, reason: locked ? ConditionReason.objectLocked : ConditionReason.deleteFailed,
                                  action: EventAction.delete,
                                  note: "could not delete \(object): \(failure.message); retrying until \(KubeTime(giveUpAt)), then the object is left in the store")
                    return .requeue(after: clock.realDuration(of: min(giveUpAt.timeIntervalSince(clock.now()), objectDeletionTimeout / 10)))
                }
                let advice = locked
                    ? "delete it once the lock has expired (by hand, or with a lifecycle rule that expires noncurrent versions)"
                    : "delete by hand or with a bucket lifecycle rule"
                events.record(.init(backup), type: .warning, reason: ConditionReason.objectLeftInStore, action: EventAction.delete,
                                    note: "left in the store: \(object); \(failure.reason.rawValue): \(failure.message); \(advice)")
                logger.error("backup deleted; its object was left in the store", metadata: ["backup": "\(backup.key)", "object": "\(object)", "reason": "\(failure.message)"])
            }
        } else if (backup.status?.attempts ?? 0) > 0 {
            await cleanUpUnfinishedAttempt(backup)
        }
        try await backups.removeFinalizer(Self.finalizer, from: backup)
        return .done
    }

    /// What a Succeeded backup stored, as Events name it: its snapshot's URL, and its state's
    /// when it has one (`s3://b/x.db and its state s3://b/x.state.yaml`).
    static func storedObjects(of backup: TalosEtcdBackup, filename: String) -> String {
        let bucket = backup.status?.bucket ?? backup.spec.backupStorage.s3.bucket
        guard let state = backup.status?.stateFilename else { return "s3://\(bucket)/\(filename)" }
        return "s3://\(bucket)/\(filename) and its state s3://\(bucket)/\(state)"
    }

    /// A backup that never completed an upload stored nothing to delete; an interrupted attempt
    /// may have left a multipart upload (or, if the process died between completing the upload
    /// and writing the status, this backup's own object). Best effort, for a few seconds: the
    /// deletion never waits on the store. Objects an attempt left under Object Lock are named by an
    /// `ObjectLeftInStore` Event.
    private func cleanUpUnfinishedAttempt(_ backup: TalosEtcdBackup) async {
        let namespace = backup.metadata.namespace ?? "default"
        let spec = backup.spec.withDefaults()
        do {
            let destination = try await destination(spec.backupStorage.s3, key: Self.objectKey(of: backup, spec: spec), namespace: namespace,
                                                    credentials: credentials.readingEachSecretOnce())
            try await endpoints.checkStore(destination)  // a host that may not be used is not asked either
            let transfer = self.transfer, owner = backup.metadata.uid ?? ""
            try await withDeadline(Self.cleanUpBound, "cleaning up after an unfinished attempt", clock: clock.timers) {
                try await transfer.delete(destination, owner: owner)
            }
        } catch let locked as PipelineFailure where locked.kind == .objectLocked {
            // A failed attempt's objects under Object Lock (written, then refused as unencrypted
            // or not locked as asked): they stay, and are never left without a record.
            events.record(.init(backup), type: .warning, reason: ConditionReason.objectLeftInStore, action: EventAction.delete,
                          note: "left in the store by an unfinished attempt: \(ConditionReason.objectLocked.rawValue): \(locked.message); delete it once the lock has expired")
        } catch {
            logger.info("no clean-up after an unfinished backup (best effort)", metadata: ["backup": "\(backup.key)", "error": "\(error)"])
            if spec.backupStorage.s3.objectLock != nil {
                // Under Object Lock an attempt may have left objects nobody can delete for now:
                // never without a record.
                events.record(.init(backup), type: .warning, reason: ConditionReason.objectLeftInStore, action: EventAction.delete,
                              note: "an unfinished attempt may have left locked objects at \(Self.objectKey(of: backup, spec: spec)) and its state beside it in bucket \(spec.backupStorage.s3.bucket); the clean-up could not check (\(BackupFailure.classify(error).message)); look once the lock has expired")
            }
        }
    }
}

/// The status no longer records the attempt that is about to write its outcome: another
/// instance took the backup over (and may have finished it).
private struct StaleAttempt: Error {
    var current: String
}

/// A fresh read showed that the attempt about to start is not needed (the backup finished, or
/// another attempt was counted): the cached copy was behind.
private struct AttemptSuperseded: Error {}
