import ControllerRuntime
import Foundation
import KubernetesClient
import CoreMetrics
import Synchronization
import CustomResources

/// The operator's own metrics, labelled by `namespace` and `schedule` (never by backup name,
/// so the number of series stays bounded by the number of schedules). The schedule gauges are
/// set from the schedule's status at every reconcile, so they survive a restart or a change of
/// leader, and are removed with the schedule. A backup created by hand has `schedule=""`.
///
/// The alerts in `deploy/prometheus` are written against these names: the interval of a
/// schedule is `next_schedule - last_schedule`, so one rule fits hourly and daily schedules.
public final class BackupMetrics: Sendable {
    public static let lastSuccess = "talos_etcd_backup_schedule_last_success_timestamp_seconds"
    public static let lastFailure = "talos_etcd_backup_schedule_last_failure_timestamp_seconds"
    public static let lastSchedule = "talos_etcd_backup_schedule_last_schedule_timestamp_seconds"
    public static let nextSchedule = "talos_etcd_backup_schedule_next_schedule_timestamp_seconds"
    public static let created = "talos_etcd_backup_schedule_created_timestamp_seconds"
    public static let paused = "talos_etcd_backup_schedule_paused"
    public static let backupsTotal = "talos_etcd_backup_backups_total"
    public static let attemptsTotal = "talos_etcd_backup_attempts_total"
    public static let uploadedBytesTotal = "talos_etcd_backup_uploaded_bytes_total"
    public static let durationSeconds = "talos_etcd_backup_duration_seconds"
    public static let sizeBytes = "talos_etcd_backup_size_bytes"
    public static let verificationsTotal = "talos_etcd_backup_verifications_total"
    public static let lastVerification = "talos_etcd_backup_schedule_last_verification_timestamp_seconds"
    public static let failedVerifications = "talos_etcd_backup_schedule_failed_verifications"

    public static let families: [MetricFamily] = [
        MetricFamily(lastSuccess, help: "Completion time of the schedule's newest successful backup (Unix seconds)."),
        MetricFamily(lastFailure, help: "Completion time of the schedule's newest failed backup that still exists (Unix seconds)."),
        MetricFamily(lastSchedule, help: "Time of the schedule's last run that created a backup (Unix seconds)."),
        MetricFamily(nextSchedule, help: "Time of the schedule's next run (Unix seconds); absent while paused or invalid."),
        MetricFamily(created, help: "Creation time of the schedule (Unix seconds)."),
        MetricFamily(paused, help: "1 while the schedule's spec.paused is true, else 0."),
        MetricFamily(backupsTotal, help: "Backups finished, by result (Succeeded, Failed) and reason."),
        MetricFamily(attemptsTotal, help: "Backup attempts started (a backup makes up to 3)."),
        MetricFamily(uploadedBytesTotal, help: "Bytes of snapshots stored in object storage by successful backups."),
        MetricFamily(durationSeconds, help: "Time from a backup's first attempt to its outcome, by result.",
                     buckets: [1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200]),
        MetricFamily(sizeBytes, help: "Size of stored snapshots in bytes.",
                     buckets: MetricFamily.exponentialBuckets(start: 1_048_576, factor: 4, count: 9)),
        MetricFamily(verificationsTotal, help: "Verifications of stored backups, by result (Passed, Failed, Error) and reason."),
        MetricFamily(lastVerification, help: "Scheduled time of the schedule's last verification run (Unix seconds); absent without spec.verification."),
        MetricFamily(failedVerifications, help: "Retained backups of the schedule whose latest verification failed; absent without spec.verification."),
    ]

    /// A recorded series, kept so that it can be removed with its schedule. The factory's
    /// handlers themselves (swift-metrics' CoreMetrics API), not `Meter`/`Counter` wrappers: at
    /// 1,000 schedules with ten series each, the wrappers' copies of label and dimensions were
    /// megabytes of the control plane's 64 MiB budget.
    private enum Handle {
        case meter(any MeterHandler)
        case counter(any CounterHandler)
        case recorder(any RecorderHandler)
        case timer(any TimerHandler)

        func destroy(in factory: any MetricsFactory) {
            switch self {
            case .meter(let meter): factory.destroyMeter(meter)
            case .counter(let counter): factory.destroyCounter(counter)
            case .recorder(let recorder): factory.destroyRecorder(recorder)
            case .timer(let timer): factory.destroyTimer(timer)
            }
        }
    }

    private struct SeriesKey: Hashable {
        var name: String
        var extra: [String]
    }

    private let factory: any MetricsFactory
    /// Every series by schedule (namespace, name); a hand-made backup's under name "".
    private let series = Mutex<[ObjectKey: [SeriesKey: Handle]]>([:])

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
    }

    /// Sets the gauges of `schedule` from what its reconcile decided.
    func recordSchedule(_ schedule: TalosEtcdBackupSchedule, status: TalosEtcdBackupScheduleStatus?, lastFailure: KubeTime?) {
        let key = schedule.key
        setGauge(Self.lastSuccess, of: key, to: status?.lastSuccessfulBackupTime?.date.timeIntervalSince1970)
        setGauge(Self.lastFailure, of: key, to: lastFailure?.date.timeIntervalSince1970)
        setGauge(Self.lastSchedule, of: key, to: status?.lastScheduleTime?.date.timeIntervalSince1970)
        setGauge(Self.nextSchedule, of: key, to: status?.nextScheduleTime?.date.timeIntervalSince1970)
        setGauge(Self.created, of: key, to: schedule.metadata.creationTimestamp?.date.timeIntervalSince1970)
        setGauge(Self.paused, of: key, to: schedule.spec.paused == true ? 1 : 0)
        setGauge(Self.lastVerification, of: key, to: status?.lastVerificationTime?.date.timeIntervalSince1970)
        setGauge(Self.failedVerifications, of: key, to: status?.verifications?.failed.map(Double.init))
    }

    /// A verification of `backup`'s stored objects ended with `result` (`reason`: its `Verified`
    /// condition's).
    func recordVerification(_ backup: TalosEtcdBackup, result: VerificationResult.Outcome, reason: ConditionReason) {
        counter(Self.verificationsTotal, of: backup, extra: [("result", result.rawValue), ("reason", reason.rawValue)]).increment(by: 1)
    }

    /// Removes every series of the schedule (it was deleted).
    func forgetSchedule(_ key: ObjectKey) {
        let handles = series.withLock { $0.removeValue(forKey: key) } ?? [:]
        for handle in handles.values { handle.destroy(in: factory) }
    }

    /// An attempt of `backup` started.
    func recordAttempt(_ backup: TalosEtcdBackup) {
        counter(Self.attemptsTotal, of: backup).increment(by: 1)
    }

    /// `backup` finished: `result` is its phase, `reason` its Ready condition's reason.
    func recordOutcome(_ backup: TalosEtcdBackup, result: BackupPhase, reason: ConditionReason, duration: TimeInterval, size: Int64?) {
        counter(Self.backupsTotal, of: backup, extra: [("result", result.rawValue), ("reason", reason.rawValue)]).increment(by: 1)
        let timer = handle(SeriesKey(name: Self.durationSeconds, extra: [result.rawValue]), of: Self.scheduleKey(of: backup)) { dimensions in
            .timer(factory.makeTimer(label: Self.durationSeconds, dimensions: dimensions + [("result", result.rawValue)]))
        }
        if case .timer(let timer) = timer { timer.recordNanoseconds(Int64(max(0, duration) * 1e9)) }
        if let size {
            counter(Self.uploadedBytesTotal, of: backup).increment(by: size)
            let recorder = handle(SeriesKey(name: Self.sizeBytes, extra: []), of: Self.scheduleKey(of: backup)) { dimensions in
                .recorder(factory.makeRecorder(label: Self.sizeBytes, dimensions: dimensions, aggregate: true))
            }
            if case .recorder(let recorder) = recorder { recorder.record(size) }
        }
    }

    /// The schedule a backup's series are filed under: its `backup-schedule` label, else "".
    private static func scheduleKey(of backup: TalosEtcdBackup) -> ObjectKey {
        ObjectKey(namespace: backup.metadata.namespace, name: backup.metadata.labels?[TalosEtcdBackupSchedule.backupScheduleLabel] ?? "")
    }

    private func counter(_ name: String, of backup: TalosEtcdBackup, extra: [(String, String)] = []) -> any CounterHandler {
        let handle = handle(SeriesKey(name: name, extra: extra.map(\.1)), of: Self.scheduleKey(of: backup)) { dimensions in
            .counter(factory.makeCounter(label: name, dimensions: dimensions + extra))
        }
        guard case .counter(let counter) = handle else { preconditionFailure("\(name) is a counter") }
        return counter
    }

    private func setGauge(_ name: String, of schedule: ObjectKey, to value: Double?) {
        let key = SeriesKey(name: name, extra: [])
        guard let value else {
            let removed = series.withLock { $0[schedule]?.removeValue(forKey: key) }
            removed?.destroy(in: factory)
            return
        }
        let handle = handle(key, of: schedule) { dimensions in .meter(factory.makeMeter(label: name, dimensions: dimensions)) }
        if case .meter(let meter) = handle { meter.set(value) }
    }

    /// The series `key` of `schedule`, created on first use.
    private func handle(_ key: SeriesKey, of schedule: ObjectKey, make: ([(String, String)]) -> Handle) -> Handle {
        series.withLock { series in
            if let existing = series[schedule]?[key] { return existing }
            let created = make([("namespace", schedule.namespace ?? ""), ("schedule", schedule.name)])
            series[schedule, default: [:]][key] = created
            return created
        }
    }
}
