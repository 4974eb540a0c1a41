import BackupOperator
import ControllerRuntime
import Cron
import Foundation
import KubernetesClient
import CustomResources
import ReconcilerTestSupport
import TestSupport
import Testing

/// Issue 15 at the reconciler level: tiered retention, the failed-backup default, backups on
/// demand, and deleting a schedule with `--cascade=orphan`.
extension ScheduleReconcilerTests {
    /// A succeeded (or failed) backup of schedule `nightly` for the run at `scheduled`.
    func addBackup(_ environment: ReconcilerEnvironment, _ schedule: TalosEtcdBackupSchedule, scheduled: Date,
                   phase: BackupPhase = .succeeded, completion: Date? = nil) async throws -> String {
        let name = "nightly-\(Int64(scheduled.timeIntervalSince1970))"
        let owner = OwnerReference(apiVersion: TalosEtcdBackupSchedule.resourceType.apiVersion, kind: TalosEtcdBackupSchedule.kind,
                                   name: "nightly", uid: schedule.metadata.uid ?? "", controller: true)
        _ = try await environment.client.create(
            TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default",
                                                 labels: [TalosEtcdBackupSchedule.backupScheduleLabel: "nightly"],
                                                 annotations: [TalosEtcdBackupSchedule.scheduledTimeAnnotation: KubeTime(scheduled).description],
                                                 ownerReferences: [owner]),
                            spec: backupSpec()),
            TalosEtcdBackup.resourceType, namespace: "default")
        try await setStatus(environment, name, phase: phase, completion: completion ?? scheduled + 60)
        return name
    }

    @Test("retentionPolicy keeps by scheduled time, per tier, in timeZone; a completion order that differs changes nothing; status counts each tier; pruned backups get Events")
    func tieredRetention() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (schedule, _) = try await createSchedule(environment) {
                $0.paused = true
                $0.timeZone = "Europe/Berlin"
                $0.retentionPolicy = RetentionPolicy(keepLast: 2, keepDaily: 3, keepMonthly: 2)
            }
            // Six-hourly runs over five days in January and one in December (Berlin = UTC+1).
            let start = KubeTime.parse("2026-01-10T00:30:00Z")!
            var names: [String] = []
            for run in 0..<20 {
                // Completion order scrambled (a clock step, a slow upload): retention ignores it.
                let scheduled = start + Double(run) * 6 * 3600
                names.append(try await addBackup(environment, schedule, scheduled: scheduled, completion: start + Double(19 - run) * 60))
            }
            let december = try await addBackup(environment, schedule, scheduled: KubeTime.parse("2025-12-20T12:00:00Z")!)
            try await environment.syncCache()
            environment.setTime(start + 30 * 86_400)
            _ = try await reconciler.reconcile(key("nightly"))
            // keepLast 2: runs 19 and 18; keepDaily 3: the newest of 14, 13 and 12 January
            // (runs 19, 15, 11); keepMonthly 2: January's newest (19) and December's.
            let expected = Set([names[19], names[18], names[15], names[11], december])
            #expect(Set(try await environment.backupNames()) == expected)
            let status = try #require(try await environment.schedule("nightly").status)
            #expect(status.retainedBackups == RetainedBackups(last: 2, daily: 3, monthly: 2, total: 5))
            #expect(try await environment.eventReasons().filter { $0 == ConditionReason.backupPruned.rawValue }.count == 16)
        }
    }

    @Test("retention and retentionPolicy together, or a policy that keeps nothing: InvalidSpec naming the field, nothing pruned (a negative tier the schema itself refuses: ValidationTests)")
    func retentionPolicyValidation() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let cases: [(String, (inout TalosEtcdBackupScheduleSpec) -> Void, String)] = [
                ("both", { $0.retention = 3; $0.retentionPolicy = RetentionPolicy(keepDaily: 7) }, "spec.retentionPolicy: must not be set together with spec.retention"),
                ("nothing", { $0.retentionPolicy = RetentionPolicy(keepLast: 0, keepDaily: 0) }, "spec.retentionPolicy: keeps nothing"),
            ]
            for (name, configure, message) in cases {
                let (schedule, _) = try await createSchedule(environment, name: name, configure: configure)
                _ = schedule
                environment.setTime(Date() + 3600)
                #expect(try await reconciler.reconcile(key(name)) == .done)
                let failed = try await environment.schedule(name).condition("Failed")
                #expect(failed?.reason == ConditionReason.invalidSpec.rawValue && failed?.message.contains(message) == true, "\(name): \(String(describing: failed))")
            }
            #expect(try await environment.backupNames().isEmpty)
        }
    }

    @Test("failedBackupsHistoryLimit defaults to 3: a broken schedule no longer keeps every failed backup")
    func failedHistoryDefault() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (schedule, first) = try await createSchedule(environment) { $0.paused = true }
            var failed: [String] = []
            for run in 0..<6 { failed.append(try await addBackup(environment, schedule, scheduled: first + Double(run) * 300, phase: .failed)) }
            try await environment.syncCache()
            environment.setTime(first + 3600)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == Array(failed.suffix(3)).sorted())
        }
    }

    @Test("backup-now: each new annotation value makes one backup <schedule>-manual-<seconds> now (paused too), labelled, owned, annotated; a repeated value, or one whose status write was lost, makes none; lastScheduleTime untouched")
    func backupNow() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            var (schedule, first) = try await createSchedule(environment) { $0.paused = true }
            func request(_ value: String) async throws {
                schedule = try await environment.schedule("nightly")
                schedule.metadata.annotations = [TalosEtcdBackupSchedule.backupNowAnnotation: value]
                schedule = try await environment.client.update(schedule, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "nightly")
            }
            let now = first + 17
            environment.setTime(now)
            try await request("first")
            _ = try await reconciler.reconcile(key("nightly"))
            let manual = "nightly-manual-\(Int64(now.timeIntervalSince1970))"
            #expect(try await environment.backupNames() == [manual])
            let backup = try await environment.client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: manual)
            #expect(backup.metadata.labels?[TalosEtcdBackupSchedule.backupScheduleLabel] == "nightly")
            #expect(backup.metadata.controllerReference?.uid == schedule.metadata.uid)
            #expect(backup.metadata.annotations?[TalosEtcdBackupSchedule.backupNowRequestAnnotation] == "first")
            #expect(backup.metadata.annotations?[TalosEtcdBackupSchedule.scheduledTimeAnnotation] == KubeTime(now).description)
            #expect(backup.spec == schedule.spec.backupTemplate.spec)
            var status = try #require(try await environment.schedule("nightly").status)
            #expect(status.lastBackupNowRequest == "first")
            #expect(status.activeBackups == [manual])
            #expect(status.lastScheduleTime == nil, "a backup on demand is not a run")
            #expect(try await environment.eventReasons().contains(ConditionReason.backupCreated.rawValue))

            // Reconciled again, or the status write lost: still one backup for "first".
            try await environment.syncCache()
            environment.setTime(now + 5)
            _ = try await reconciler.reconcile(key("nightly"))
            var lost = try await environment.schedule("nightly")
            lost.status?.lastBackupNowRequest = nil
            _ = try await environment.client.updateStatus(lost, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "nightly")
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == [manual])
            #expect(try await environment.schedule("nightly").status?.lastBackupNowRequest == "first")

            environment.setTime(now + 60)
            try await request("second")
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == [manual, "nightly-manual-\(Int64((now + 60).timeIntervalSince1970))"].sorted())
            status = try #require(try await environment.schedule("nightly").status)
            #expect(status.lastBackupNowRequest == "second")
        }
    }

    @Test("deleting a schedule with --cascade=orphan (propagationPolicy Orphan) leaves its backups, which lose their ownerReference; the schedule goes")
    func orphanCascade() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (_, first) = try await createSchedule(environment) { $0.concurrencyPolicy = .allow }
            for n in 0..<2 {
                environment.setTime(first + Double(n) * 300 + 1)
                _ = try await reconciler.reconcile(key("nightly"))
            }
            let names = try await environment.backupNames()
            #expect(names.count == 2)
            try await environment.client.delete(TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "nightly",
                                                options: DeleteOptions(propagationPolicy: .orphan))
            #expect(try await environment.schedule("nightly").metadata.finalizers?.contains("orphan") == true)
            #expect(try await reconciler.reconcile(key("nightly")) == .done)
            let gone = await TestHelpers.caught(KubernetesError.self) { _ = try await environment.schedule("nightly") }
            #expect(gone?.isNotFound == true)
            #expect(try await environment.backupNames() == names, "the backups stay")
            for name in names {
                let backup = try await environment.client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: name)
                #expect(backup.metadata.ownerReferences == nil, "orphaned by the garbage collector")
                #expect(backup.metadata.deletionTimestamp == nil)
            }
        }
    }
}
