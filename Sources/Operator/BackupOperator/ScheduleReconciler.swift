import BackupResolution
import ControllerRuntime
import Cron
import CustomResources
import Foundation
import KubernetesClient
import Logging

/// Reconciles one `TalosEtcdBackupSchedule` the way the Kubernetes CronJob controller runs a
/// CronJob (docs/design.md, Schedule controller).
///
/// - Runs come from the Cron module in `timeZone`, counted from `lastScheduleTime` (or the
///   creation time): when a run time has passed, one backup is created for the most recent one;
///   older missed ones are dropped, and with `startingDeadlineSeconds` so is one older than the
///   deadline (an Event `MissedSchedule` says so). Nothing is created at creation time.
/// - A backup's name is `<schedule>-<unix seconds of the run>`, so a restart or a second
///   replica creating it again gets AlreadyExists, which counts as created.
/// - `concurrencyPolicy: Forbid` (the default) holds a due run while a backup of this schedule
///   is active and creates it when that one finishes (as CronJob does); `Allow` does not wait.
/// - The reconciler asks to be called again exactly at `nextScheduleTime`.
/// - Retention keeps the newest `retention` successful backups by completion time, or with
///   `retentionPolicy` what its tiers keep (``Retention``, by each run's scheduled time); failed
///   ones are trimmed oldest first to `failedBackupsHistoryLimit` (default 3). It applies while
///   paused too. Running backups are never pruned. What each tier holds goes to
///   `status.retainedBackups`.
/// - A new value of the annotation `talos.alperen.cloud/backup-now` creates one backup now
///   (`<schedule>-manual-<unix seconds>`), as `kubectl create job --from=cronjob/...` does:
///   labelled, owned and retained like the scheduled ones, never `lastScheduleTime`; the value
///   acted on goes to `status.lastBackupNowRequest` and onto the backup, so a value is never
///   acted on twice. Paused schedules take them too (a request is explicit).
/// - Deleting the schedule deletes its backups (whose finalizers delete their objects, unless
///   their `deletionPolicy` is `Retain`) before the schedule's finalizer is removed; deleted
///   with `--cascade=orphan` (the `orphan` finalizer), it leaves its backups alone.
public struct ScheduleReconciler: Reconciler {
    public static let finalizer = "talos.alperen.cloud/backup-schedule"
    /// The finalizer the API server adds for a deletion with `propagationPolicy: Orphan`.
    static let orphanFinalizer = "orphan"

    /// Schedules and their backups: read from the informers' stores, written through the API.
    let schedules: ObjectClient<TalosEtcdBackupSchedule>
    let backups: ObjectClient<TalosEtcdBackup>
    let events: EventRecorder
    let clock: OperatorClock
    let metrics: BackupMetrics
    let logger: Logger

    /// `backups` is over an informer of the same namespaces' backups.
    public init(schedules: ObjectClient<TalosEtcdBackupSchedule>, backups: ObjectClient<TalosEtcdBackup>,
                events: EventRecorder, clock: OperatorClock = .system, metrics: BackupMetrics = BackupMetrics(),
                logger: Logger = Logger(label: "schedule-controller")) {
        self.schedules = schedules
        self.backups = backups
        self.events = events
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    public func reconcile(_ key: ObjectKey) async throws -> ReconcileResult {
        // A cached copy that is behind is harmless: a run it thinks is due gets AlreadyExists,
        // and status writes carry its resourceVersion, so they are redone on a fresh read.
        guard var schedule = schedules.cached(key) else {
            metrics.forgetSchedule(key)
            return .done
        }
        if schedule.metadata.deletionTimestamp != nil {
            metrics.forgetSchedule(key)
            return try await finalize(schedule)
        }
        if !(schedule.metadata.finalizers ?? []).contains(Self.finalizer) {
            guard let updated = try await schedules.addFinalizer(Self.finalizer, to: schedule) else { return .done }
            schedule = updated
        }
        let now = clock.now()
        let generation = schedule.metadata.generation

        if let invalid = Self.invalidity(schedule) {
            try await writeStatus(schedule, now: now, lastFailure: Self.lastFailure(ownedBackups(of: schedule))) { status in
                status.nextScheduleTime = nil
                var conditions = status.conditions ?? []
                conditions.set(type: ConditionType.failed, status: .true, reason: invalid.reason, message: invalid.message, observedGeneration: generation, now: now)
                conditions.set(type: ConditionType.ready, status: .false, reason: invalid.reason, message: invalid.message, observedGeneration: generation, now: now)
                status.conditions = conditions
            } onChange: {
                events.record(.init(schedule), type: .warning, reason: invalid.reason, action: EventAction.validate, note: invalid.message)
            }
            return .done
        }

        let spec = schedule.spec.withDefaults()
        // Validated above, so this parses; its zone (timeZone, or a CRON_TZ= prefix) is also
        // the one retention's periods are read in.
        let cron = try CronSchedule(spec.schedule, timeZone: spec.timeZone)
        var children = ownedBackups(of: schedule)
        let retained: RetainedBackups, lockExpiry: Date?
        (children, retained, lockExpiry) = try await prune(children, spec: spec, timeZone: cron.timeZone, schedule: schedule, now: now)
        var active = children.filter { $0.status?.phase?.isFinished != true }.compactMap(\.metadata.name).sorted()
        let lastSuccess = children.filter { Self.succeeded($0) }.compactMap { $0.status?.completionTime }.max()
        let lastFailure = Self.lastFailure(children)
        let backupNow = try await answerBackupNow(schedule, children: children, now: now)
        if let name = backupNow?.backup, !active.contains(name) { active.append(name) }
        let verification = try Self.verification(of: schedule, spec: spec, zone: cron.timeZone.identifier, children: children, now: now)

        if spec.paused == true {
            try await writeStatus(schedule, now: now, lastFailure: lastFailure) { status in
                status.retainedBackups = retained
                if let backupNow { status.lastBackupNowRequest = backupNow.request }
                status.activeBackups = active.isEmpty ? nil : active.sorted()
                status.lastSuccessfulBackupTime = lastSuccess ?? status.lastSuccessfulBackupTime
                status.nextScheduleTime = nil
                verification.apply(to: &status)
                var conditions = status.conditions ?? []
                conditions.set(type: ConditionType.ready, status: .false, reason: ConditionReason.paused, message: "spec.paused is true: no new backups (retention still applies)",
                               observedGeneration: generation, now: now)
                conditions.set(type: ConditionType.failed, status: .false, reason: ConditionReason.paused, message: "", observedGeneration: generation, now: now)
                status.conditions = conditions
            }
            // Verification goes on while paused: the backups kept still need checking.
            guard let next = [verification.next, lockExpiry].compactMap({ $0 }).min() else { return .done }
            return .requeue(after: clock.realDuration(of: next.timeIntervalSince(now)))
        }

        let earliest = schedule.status?.lastScheduleTime?.date ?? schedule.metadata.creationTimestamp?.date ?? now
        var lastScheduleTime = schedule.status?.lastScheduleTime
        var creationFailure: BackupFailure?
        if let due = cron.lastRun(atOrBefore: now, after: earliest) {
            if let deadline = spec.startingDeadlineSeconds, now.timeIntervalSince(due) > Double(deadline) {
                events.record(.init(schedule), type: .warning, reason: ConditionReason.missedSchedule, action: EventAction.schedule,
                                    note: "skipped the run of \(KubeTime(due)): more than startingDeadlineSeconds (\(deadline)) late")
            } else if Self.holds(spec.effectiveConcurrencyPolicy), !active.isEmpty {
                logger.info("run held: a backup of this schedule is still active (concurrencyPolicy Forbid)",
                            metadata: ["schedule": "\(key)", "due": "\(KubeTime(due))", "active": "\(active)"])
            } else {
                do {
                    let name = try await createBackup(for: schedule, at: due)
                    lastScheduleTime = KubeTime(due)
                    if !active.contains(name) { active.append(name) }
                } catch {
                    creationFailure = BackupFailure(reason: ConditionReason.backupCreationFailed, message: "could not create the backup for \(KubeTime(due)): \(error)")
                }
            }
        }
        let next = cron.nextRun(after: now, anchor: lastScheduleTime?.date ?? earliest)
        try await writeStatus(schedule, now: now, lastFailure: lastFailure) { status in
            // Never backwards (a fresh read after a conflict may know a later run).
            status.lastScheduleTime = [status.lastScheduleTime, lastScheduleTime].compactMap { $0 }.max()
            status.retainedBackups = retained
            if let backupNow { status.lastBackupNowRequest = backupNow.request }
            status.activeBackups = active.isEmpty ? nil : active.sorted()
            status.lastSuccessfulBackupTime = lastSuccess ?? status.lastSuccessfulBackupTime
            status.nextScheduleTime = next.map(KubeTime.init)
            verification.apply(to: &status)
            var conditions = status.conditions ?? []
            if let creationFailure {
                conditions.set(type: ConditionType.failed, status: .true, reason: creationFailure.reason, message: creationFailure.message, observedGeneration: generation, now: now)
                conditions.set(type: ConditionType.ready, status: .false, reason: creationFailure.reason, message: creationFailure.message, observedGeneration: generation, now: now)
            } else {
                let message = next.map { "next backup at \(KubeTime($0))" } ?? "the schedule has no further run"
                conditions.set(type: ConditionType.ready, status: .true, reason: ConditionReason.scheduled, message: message, observedGeneration: generation, now: now)
                conditions.set(type: ConditionType.failed, status: .false, reason: ConditionReason.scheduled, message: "", observedGeneration: generation, now: now)
            }
            status.conditions = conditions
        }
        if let creationFailure {
            events.record(.init(schedule), type: .warning, reason: creationFailure.reason, action: EventAction.schedule, note: creationFailure.message)
            throw creationFailure
        }
        guard let wake = [next, verification.next, lockExpiry].compactMap({ $0 }).min() else { return .done }
        return .requeue(after: clock.realDuration(of: wake.timeIntervalSince(now)))
    }

    // MARK: Verification

    /// Where a schedule's verification runs stand (``VerificationReconciler`` does the checks).
    struct VerificationState {
        var last: KubeTime?
        var next: Date?
        var counts: VerificationCounts?

        func apply(to status: inout TalosEtcdBackupScheduleStatus) {
            // Never backwards (a fresh read after a conflict may know a later run).
            status.lastVerificationTime = counts == nil ? nil : [status.lastVerificationTime, last].compactMap { $0 }.max()
            status.nextVerificationTime = next.map(KubeTime.init)
            status.verifications = counts
        }
    }

    /// The verification run due now (the most recent run time of `spec.verification` since
    /// the last one, none missed ever caught up twice: one run checks every retained backup),
    /// the next one, and the retained successful backups' latest results: failed when the
    /// latest result is Failed, passed when verified since the last run, pending otherwise.
    /// Nothing without `spec.verification`.
    static func verification(of schedule: TalosEtcdBackupSchedule, spec: TalosEtcdBackupScheduleSpec, zone: String,
                             children: [TalosEtcdBackup], now: Date) throws -> VerificationState {
        guard let verification = spec.verification else { return VerificationState() }
        let cron = try verification.cronSchedule(defaultTimeZone: zone)  // validated; `zone`: the schedule's
        let earliest = schedule.status?.lastVerificationTime?.date ?? schedule.metadata.creationTimestamp?.date ?? now
        let last = cron.lastRun(atOrBefore: now, after: earliest).map(KubeTime.init) ?? schedule.status?.lastVerificationTime
        var counts = VerificationCounts(passed: 0, failed: 0, pending: 0)
        for backup in children where succeeded(backup) {
            if backup.status?.verification?.result == .failed {
                counts.failed! += 1
            } else if backup.status?.verification?.result == .passed, let verified = backup.status?.lastVerifiedTime,
                      let last, verified.date >= last.date {
                counts.passed! += 1
            } else {
                counts.pending! += 1
            }
        }
        return VerificationState(last: last, next: cron.nextRun(after: now, anchor: last?.date ?? earliest), counts: counts)
    }

    /// Whether a due run waits while a backup of the schedule is active. A value this version
    /// does not know holds too (validation refuses it before this is asked).
    static func holds(_ policy: ConcurrencyPolicy) -> Bool {
        switch policy {
        case .forbid, .unknown: true
        case .allow: false
        }
    }

    // MARK: Validation

    /// The reason and message of a schedule that cannot work, or nil.
    static func invalidity(_ schedule: TalosEtcdBackupSchedule) -> (reason: ConditionReason, message: String)? {
        let errors = schedule.validate()
        guard !errors.isEmpty else { return nil }
        let message = errors.map(\.description).joined(separator: "; ")
        // The most specific reason among the problems: a time zone, then a cron expression,
        // then a name, else InvalidSpec.
        let precedence: [ConditionReason] = [.invalidTimeZone, .invalidSchedule, .invalidVerificationSchedule, .invalidName]
        let reason = precedence.first { specific in errors.contains { $0.reason == specific } } ?? .invalidSpec
        return (reason, message)
    }

    // MARK: Backups

    static func succeeded(_ backup: TalosEtcdBackup) -> Bool {
        backup.status?.phase == .succeeded || (backup.status?.conditions ?? []).isTrue(ConditionType.ready)
    }

    /// This schedule's backups that are not being deleted: those in its namespace with label
    /// `talos.alperen.cloud/backup-schedule=<name>`, as docs/design.md defines retention (the
    /// schedule sets that label and a controller ownerReference on every backup it creates).
    private func ownedBackups(of schedule: TalosEtcdBackupSchedule) -> [TalosEtcdBackup] {
        guard let name = schedule.metadata.name else { return [] }
        return backups.cachedList(namespace: schedule.metadata.namespace).filter {
            $0.metadata.labels?[TalosEtcdBackupSchedule.backupScheduleLabel] == name && $0.metadata.deletionTimestamp == nil
        }
    }

    /// Deletes the successful backups retention does not keep (``Retention``: `retention` as
    /// keepLast by completion time, or the tiers of `retentionPolicy` by scheduled time) and
    /// the failed ones beyond `failedBackupsHistoryLimit`, oldest first; returns the backups
    /// that remain, what each tier holds, and when a backup kept only by its lock may go.
    /// A backup whose objects S3 Object Lock still holds (`status.lockedUntil`, with
    /// `deletionPolicy: Delete`) is not deleted: its objects could not be, and would be left
    /// in the store. It stays until the lock has expired, plus ``lockExpiryMargin`` for the
    /// store's clock, and goes then.
    private func prune(_ children: [TalosEtcdBackup], spec: TalosEtcdBackupScheduleSpec, timeZone: TimeZone,
                       schedule: TalosEtcdBackupSchedule, now: Date) async throws -> ([TalosEtcdBackup], RetainedBackups, Date?) {
        func newestFirst(_ a: TalosEtcdBackup, _ b: TalosEtcdBackup) -> Bool {
            let left = a.status?.completionTime?.date ?? .distantPast, right = b.status?.completionTime?.date ?? .distantPast
            return left != right ? left > right : (a.metadata.name ?? "") > (b.metadata.name ?? "")
        }
        let successful = children.filter { Self.succeeded($0) }
        let policy = spec.retentionPolicy ?? RetentionPolicy(keepLast: spec.retention ?? Defaults.retention)
        let candidates = successful.map { backup in
            Retention.Candidate(name: backup.metadata.name ?? "",
                                time: spec.retentionPolicy == nil ? backup.status?.completionTime?.date ?? .distantPast : Self.scheduledTime(of: backup))
        }
        let decision = Retention.apply(policy, to: candidates, timeZone: timeZone)
        var doomed = successful.filter { !decision.kept.contains($0.metadata.name ?? "") }
        if let limit = spec.failedBackupsHistoryLimit {
            let failed = children.filter { $0.status?.phase == .failed && !Self.succeeded($0) }.sorted(by: newestFirst)
            doomed += failed.dropFirst(limit)
        }
        var lockExpiry: Date?
        doomed = doomed.filter { backup in
            guard let until = Self.lockedUntil(backup, now: now) else { return true }
            lockExpiry = min(lockExpiry ?? until, until)
            return false
        }
        for backup in doomed {
            guard let name = backup.metadata.name else { continue }
            do {
                // Already gone: nothing was pruned.
                guard try await backups.delete(backup.key, options: DeleteOptions(preconditionUID: backup.metadata.uid)) else { continue }
            } catch let error as KubernetesError where error.isConflict {
                continue  // replaced by another backup of the same name: not the one to prune
            }
            let kind = backup.status?.phase == .failed ? "failed backup beyond failedBackupsHistoryLimit" : "successful backup retention does not keep"
            events.record(.init(schedule), type: .normal, reason: ConditionReason.backupPruned, action: EventAction.prune, note: "deleted \(kind) \(name)")
        }
        let removed = Set(doomed.compactMap(\.metadata.name))
        return (children.filter { !removed.contains($0.metadata.name ?? "") }, decision.retained, lockExpiry)
    }

    /// How long after a lock's retention date retention waits before deleting the backup: the
    /// store judges the date by its own clock.
    public static let lockExpiryMargin: TimeInterval = 60

    /// When `backup` may be pruned, if S3 Object Lock still holds its objects at `now` and
    /// deleting it would delete them (`deletionPolicy: Delete`); nil when it may go now.
    static func lockedUntil(_ backup: TalosEtcdBackup, now: Date) -> Date? {
        guard (backup.spec.deletionPolicy ?? Defaults.deletionPolicy) == .delete,
              let until = backup.status?.lockedUntil?.date.addingTimeInterval(lockExpiryMargin), until > now else { return nil }
        return until
    }

    /// The time tiered retention judges a backup by: its run's scheduled time (the
    /// `scheduled-time` annotation, else the Unix seconds its name ends in), else its
    /// completion or creation time.
    static func scheduledTime(of backup: TalosEtcdBackup) -> Date {
        if let annotated = backup.metadata.annotations?[TalosEtcdBackupSchedule.scheduledTimeAnnotation], let date = KubeTime.parse(annotated) {
            return date
        }
        if let fromName = backup.metadata.name.flatMap(TalosEtcdBackupSchedule.runTime(ofBackupNamed:)) {
            return fromName
        }
        return backup.status?.completionTime?.date ?? backup.metadata.creationTimestamp?.date ?? .distantPast
    }

    /// Creates the backup a new `backup-now` value asks for; nil when there is none (no
    /// annotation, or its value was answered: recorded in status, or found on a backup).
    private func answerBackupNow(_ schedule: TalosEtcdBackupSchedule, children: [TalosEtcdBackup],
                                 now: Date) async throws -> (request: String, backup: String?)? {
        guard let request = schedule.metadata.annotations?[TalosEtcdBackupSchedule.backupNowAnnotation], !request.isEmpty,
              request != schedule.status?.lastBackupNowRequest else { return nil }
        if children.contains(where: { $0.metadata.annotations?[TalosEtcdBackupSchedule.backupNowRequestAnnotation] == request }) {
            return (request, nil)  // made already; the status write that records it was lost
        }
        let name = try await createBackup(for: schedule, at: now, manualRequest: request)
        return (request, name)
    }

    /// Creates the backup of the run at `time` (or, with `manualRequest`, the backup that
    /// `backup-now` value asks for); returns its name. AlreadyExists counts as created: the
    /// name is a function of the run, so it is this run's backup.
    private func createBackup(for schedule: TalosEtcdBackupSchedule, at time: Date, manualRequest: String? = nil) async throws -> String {
        let name = "\(schedule.metadata.name ?? "")-\(manualRequest == nil ? "" : "manual-")\(Int64(time.timeIntervalSince1970))"
        var annotations = [TalosEtcdBackupSchedule.scheduledTimeAnnotation: KubeTime(time).description]
        annotations[TalosEtcdBackupSchedule.backupNowRequestAnnotation] = manualRequest
        var backup = schedule.backup(named: name, annotations: annotations)
        // Created with the backup controller's finalizer in place: one write less per backup.
        backup.metadata.finalizers = [BackupReconciler.finalizer]
        do {
            _ = try await backups.create(backup)
            logger.info("created backup", metadata: ["schedule": "\(schedule.key)", "backup": "\(name)", "scheduledTime": "\(KubeTime(time))"])
            events.record(.init(schedule), type: .normal, reason: ConditionReason.backupCreated, action: EventAction.schedule,
                          note: manualRequest == nil ? "created backup \(name) for the run of \(KubeTime(time))"
                              : "created backup \(name) on demand (backup-now \(manualRequest!))")
        } catch let error as KubernetesError where error.isAlreadyExists {
            logger.info("backup for this run already exists", metadata: ["schedule": "\(schedule.key)", "backup": "\(name)"])
        }
        return name
    }

    // MARK: Status and deletion

    /// Completion of the newest failed backup among `backups` (for ``BackupMetrics``).
    static func lastFailure(_ backups: [TalosEtcdBackup]) -> KubeTime? {
        backups.filter { $0.status?.phase == .failed }.compactMap { $0.status?.completionTime }.max()
    }

    /// Writes the schedule's status through the status subresource (conflicts retried on a
    /// fresh read), with `observedGeneration`, and sets the schedule's gauges from what was
    /// written (`lastFailure` from the backups the caller already read); calls `onChange` when
    /// a condition changed.
    private func writeStatus(
        _ schedule: TalosEtcdBackupSchedule, now: Date, lastFailure: KubeTime?, _ change: (inout TalosEtcdBackupScheduleStatus) -> Void,
        onChange: () async -> Void = {}
    ) async throws {
        var conditionsChanged = false
        let written = try await schedules.modify(schedule.key, .status, from: schedule) { object in
            var status = object.status ?? TalosEtcdBackupScheduleStatus()
            let before = status.conditions
            status.observedGeneration = object.metadata.generation
            change(&status)
            conditionsChanged = before != status.conditions
            object.status = status
        }
        if let written {
            metrics.recordSchedule(written, status: written.status, lastFailure: lastFailure)
        }
        if conditionsChanged { await onChange() }
    }

    /// Deletes every backup of the schedule, waits until they are gone (their own finalizers
    /// delete their objects), then removes the schedule's finalizer. A schedule deleted with
    /// `--cascade=orphan` (the API server adds the `orphan` finalizer; the garbage collector
    /// then drops the backups' ownerReferences) keeps its backups: only the finalizer goes.
    private func finalize(_ schedule: TalosEtcdBackupSchedule) async throws -> ReconcileResult {
        guard (schedule.metadata.finalizers ?? []).contains(Self.finalizer) else { return .done }
        if (schedule.metadata.finalizers ?? []).contains(Self.orphanFinalizer) {
            logger.info("schedule deleted with --cascade=orphan: its backups stay", metadata: ["schedule": "\(schedule.key)"])
            try await schedules.removeFinalizer(Self.finalizer, from: schedule)
            return .done
        }
        let name = schedule.metadata.name ?? ""
        let remaining = try await backups.list(
            namespace: schedule.metadata.namespace,
            options: ListOptions(labelSelector: "\(TalosEtcdBackupSchedule.backupScheduleLabel)=\(name)")
        ).items
        if remaining.isEmpty {
            try await schedules.removeFinalizer(Self.finalizer, from: schedule)
            return .done
        }
        for backup in remaining where backup.metadata.deletionTimestamp == nil {
            try await backups.delete(backup.key)
        }
        // Each backup's deletion wakes this reconciler (it owns them); the requeue is a fallback.
        return .requeue(after: .seconds(5))
    }
}
