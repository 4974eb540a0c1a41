import BackupOperator
import BackupResolution
import ControllerRuntime
import Cron
import CustomResources
import Foundation
import KubernetesClient
import OperatorEndpoints
import ReconcilerTestSupport
import Testing
import TestSupport

@Suite("Schedule reconciler: CronJob run rules, concurrency, retention, deletion (Kubernetes API in memory, no network)")
struct ScheduleReconcilerTests {
    func reconciler(_ environment: ReconcilerEnvironment) -> ScheduleReconciler {
        ScheduleReconciler(schedules: environment.scheduleClient, backups: environment.backupClient, events: environment.events,
                           clock: environment.clock, logger: quietLogger("schedule"))
    }

    /// Creates a schedule every five minutes; returns it and its first run after creation.
    func createSchedule(_ environment: ReconcilerEnvironment, name: String = "nightly", configure: (inout TalosEtcdBackupScheduleSpec) -> Void = { _ in }) async throws -> (TalosEtcdBackupSchedule, Date) {
        var spec = TalosEtcdBackupScheduleSpec(schedule: "*/5 * * * *", backupTemplate: BackupTemplate(spec: backupSpec()))
        configure(&spec)
        let schedule = try await environment.client.create(
            TalosEtcdBackupSchedule(metadata: ObjectMeta(name: name, namespace: environment.namespace), spec: spec),
            TalosEtcdBackupSchedule.resourceType, namespace: environment.namespace)
        let created = try #require(schedule.metadata.creationTimestamp?.date)
        let first = try #require(try CronSchedule("*/5 * * * *").nextRun(after: created))
        return (schedule, first)
    }

    func key(_ name: String) -> ObjectKey { ObjectKey(namespace: "default", name: name) }

    /// Writes a backup's status as the backup controller would.
    func setStatus(_ environment: ReconcilerEnvironment, _ name: String, phase: BackupPhase, completion: Date?, lockedUntil: Date? = nil) async throws {
        var backup = try await environment.client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: name)
        var status = TalosEtcdBackupStatus()
        status.phase = phase
        status.completionTime = completion.map(KubeTime.init)
        status.lockedUntil = lockedUntil.map(KubeTime.init)
        var conditions: [Condition] = []
        if phase == .succeeded { conditions.set(type: "Ready", status: .true, reason: ConditionReason.succeeded.rawValue, message: "", now: completion ?? Date()) }
        if phase == .failed { conditions.set(type: "Failed", status: .true, reason: ConditionReason.uploadFailed.rawValue, message: "", now: completion ?? Date()) }
        status.conditions = conditions
        backup.status = status
        _ = try await environment.client.updateStatus(backup, TalosEtcdBackup.resourceType, namespace: "default", name: name)
    }

    @Test("nothing at creation; requeue at the next run; after missed runs one backup for the most recent; a second creation of it is AlreadyExists")
    func missedRuns() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (schedule, first) = try await createSchedule(environment)
            let created = try #require(schedule.metadata.creationTimestamp?.date)

            environment.setTime(created)
            let atCreation = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames().isEmpty, "no backup at creation time")
            #expect(atCreation == .requeue(after: .milliseconds(Int64((first.timeIntervalSince(created) * 1000).rounded(.up)))))
            var status = try #require(try await environment.schedule("nightly").status)
            #expect(status.nextScheduleTime == KubeTime(first))
            #expect(status.lastScheduleTime == nil)
            #expect(try await environment.schedule("nightly").metadata.finalizers == [ScheduleReconciler.finalizer])

            // Four runs missed (the controller was down): one backup, for the most recent.
            let latest = first + 3 * 300
            environment.setTime(latest + 10)
            let result = try await reconciler.reconcile(key("nightly"))
            #expect(result == .requeue(after: .seconds(290)))
            let name = "nightly-\(Int64(latest.timeIntervalSince1970))"
            #expect(try await environment.backupNames() == [name])
            let backup = try await environment.client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: name)
            #expect(backup.metadata.labels?[TalosEtcdBackupSchedule.backupScheduleLabel] == "nightly")
            #expect(backup.metadata.controllerReference?.uid == schedule.metadata.uid)
            #expect(backup.spec == schedule.spec.backupTemplate.spec)
            status = try #require(try await environment.schedule("nightly").status)
            #expect(status.lastScheduleTime == KubeTime(latest))
            #expect(status.activeBackups == [name])
            #expect(status.nextScheduleTime == KubeTime(latest + 300))
            #expect(try await environment.schedule("nightly").condition("Ready")?.status == .true)

            // Another replica (or a restart before the status write) runs the same tick again
            // after that backup finished: AlreadyExists counts as created, no duplicate.
            try await setStatus(environment, name, phase: .succeeded, completion: latest + 20)
            try await environment.syncCache()
            var stale = try await environment.schedule("nightly")
            stale.status?.lastScheduleTime = nil
            _ = try await environment.client.updateStatus(stale, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "nightly")
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == [name])
            #expect(try await environment.schedule("nightly").status?.lastScheduleTime == KubeTime(latest))
        }
    }

    @Test("startingDeadlineSeconds: a run older than the deadline is skipped with a MissedSchedule event")
    func startingDeadline() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (_, first) = try await createSchedule(environment) { $0.startingDeadlineSeconds = 30 }
            environment.setTime(first + 45)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames().isEmpty)
            #expect(try await environment.eventReasons().contains(ConditionReason.missedSchedule.rawValue))
            environment.setTime(first + 300 + 10)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == ["nightly-\(Int64((first + 300).timeIntervalSince1970))"])
        }
    }

    @Test("Forbid holds a due run while a backup is active and creates it once that one finishes; Allow does not wait")
    func concurrencyPolicy() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (_, first) = try await createSchedule(environment)
            let tick = { (n: Int) in "nightly-\(Int64((first + Double(n) * 300).timeIntervalSince1970))" }
            environment.setTime(first + 1)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == [tick(0)])
            try await environment.syncCache()

            environment.setTime(first + 300 + 1)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == [tick(0)], "Forbid: held while \(tick(0)) is active")
            #expect(try await environment.schedule("nightly").status?.activeBackups == [tick(0)])

            try await setStatus(environment, tick(0), phase: .succeeded, completion: first + 60)
            try await environment.syncCache()
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == [tick(0), tick(1)], "the held run is created once the active one finished")
            try await environment.syncCache()

            var schedule = try await environment.schedule("nightly")
            schedule.spec.concurrencyPolicy = .allow
            _ = try await environment.client.update(schedule, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "nightly")
            environment.setTime(first + 600 + 1)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == [tick(0), tick(1), tick(2)], "Allow: created alongside the active one")
            #expect(try await environment.schedule("nightly").status?.activeBackups == [tick(1), tick(2)])
        }
    }

    @Test("retention keeps the newest successful backups, failedBackupsHistoryLimit trims failed ones, running ones stay; also while paused")
    func retention() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (schedule, first) = try await createSchedule(environment) {
                $0.retention = 2
                $0.failedBackupsHistoryLimit = 1
                $0.paused = true
            }
            let owner = OwnerReference(apiVersion: TalosEtcdBackupSchedule.resourceType.apiVersion, kind: TalosEtcdBackupSchedule.kind,
                                       name: "nightly", uid: schedule.metadata.uid ?? "", controller: true)
            let plan: [(String, BackupPhase?, Double)] = [
                ("ok-1", .succeeded, 10), ("ok-2", .succeeded, 20), ("ok-3", .succeeded, 30), ("ok-4", .succeeded, 40),
                ("bad-1", .failed, 15), ("bad-2", .failed, 25), ("bad-3", .failed, 35), ("running", .running, 0),
            ]
            for (name, phase, minutes) in plan {
                let backup = TalosEtcdBackup(
                    metadata: ObjectMeta(name: name, namespace: "default", labels: [TalosEtcdBackupSchedule.backupScheduleLabel: "nightly"],
                                         ownerReferences: [owner]),
                    spec: backupSpec())
                _ = try await environment.client.create(backup, TalosEtcdBackup.resourceType, namespace: "default")
                if let phase {
                    try await setStatus(environment, name, phase: phase, completion: phase.isFinished ? first + minutes * 60 : nil)
                }
            }
            // docs/design.md, Schedule controller: retention counts the backups with the
            // schedule's label, so a labelled backup without an owner reference (made by hand)
            // counts too; one with another schedule's label does not.
            for (name, label, minutes) in [("labelled", "nightly", 5.0), ("other-schedule", "weekly", 1.0)] {
                _ = try await environment.client.create(
                    TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default", labels: [TalosEtcdBackupSchedule.backupScheduleLabel: label]), spec: backupSpec()),
                    TalosEtcdBackup.resourceType, namespace: "default")
                try await setStatus(environment, name, phase: .succeeded, completion: first + minutes * 60)
            }
            try await environment.syncCache()
            environment.setTime(first + 3600)
            #expect(try await reconciler.reconcile(key("nightly")) == .done, "paused: no requeue")
            #expect(try await environment.backupNames() == ["bad-3", "ok-3", "ok-4", "other-schedule", "running"])
            let status = try #require(try await environment.schedule("nightly").status)
            #expect(status.lastSuccessfulBackupTime == KubeTime(first + 40 * 60))
            #expect(status.activeBackups == ["running"])
            #expect(status.nextScheduleTime == nil)
            let paused = try await environment.schedule("nightly")
            #expect(paused.condition("Ready")?.status == .false && paused.condition("Ready")?.reason == ConditionReason.paused.rawValue)
            #expect(try await environment.eventReasons().filter { $0 == ConditionReason.backupPruned.rawValue }.count == 5)
        }
    }

    @Test("retention leaves a backup whose objects S3 Object Lock still holds, wakes when the lock has expired (plus a minute), and prunes it then; with deletionPolicy Retain the lock does not matter")
    func retentionWaitsForTheLock() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (schedule, first) = try await createSchedule(environment) {
                $0.retention = 1
                $0.paused = true
            }
            let owner = OwnerReference(apiVersion: TalosEtcdBackupSchedule.resourceType.apiVersion, kind: TalosEtcdBackupSchedule.kind,
                                       name: "nightly", uid: schedule.metadata.uid ?? "", controller: true)
            let now = first + 3600
            let lockEnds = now + 86_400
            for (name, minutes, locked, retain) in [("locked", 10.0, true, false), ("retained", 20.0, true, true), ("newest", 30.0, true, false)] {
                var spec = backupSpec()
                if retain { spec.deletionPolicy = .retain }
                _ = try await environment.client.create(
                    TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default", labels: [TalosEtcdBackupSchedule.backupScheduleLabel: "nightly"],
                                                         ownerReferences: [owner]), spec: spec),
                    TalosEtcdBackup.resourceType, namespace: "default")
                try await setStatus(environment, name, phase: .succeeded, completion: first + minutes * 60, lockedUntil: locked ? lockEnds : nil)
            }
            try await environment.syncCache()
            environment.setTime(now)
            let result = try await reconciler.reconcile(key("nightly"))
            #expect(result == .requeue(after: .seconds(86_400 + ScheduleReconciler.lockExpiryMargin)), "wakes when the lock ends: \(result)")
            #expect(try await environment.backupNames() == ["locked", "newest"], "the Retain one goes (its objects stay); the locked one waits")

            environment.setTime(lockEnds + ScheduleReconciler.lockExpiryMargin - 1)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == ["locked", "newest"], "not before the margin has passed")
            environment.setTime(lockEnds + ScheduleReconciler.lockExpiryMargin)
            #expect(try await reconciler.reconcile(key("nightly")) == .done, "paused, nothing left to wait for")
            #expect(try await environment.backupNames() == ["newest"], "pruned once the lock has expired")
        }
    }

    @Test("status writes go through /status and survive conflicts (a fresh read and another try)")
    func statusWriteSurvivesConflicts() async throws {
        try await ReconcilerEnvironment.with { environment in
            let (schedule, _) = try await createSchedule(environment)
            let created = try #require(schedule.metadata.creationTimestamp?.date)
            environment.setTime(created)
            // The next two status writes lose a race with another writer.
            await environment.api.failNextRequests(2, code: 409, method: "PUT", pathContains: "/status")
            _ = try await reconciler(environment).reconcile(key("nightly"))
            let written = try await environment.schedule("nightly")
            #expect(written.status?.nextScheduleTime != nil, "written on the third try")
            #expect(written.condition("Ready")?.status == .true)
            #expect(written.metadata.generation == schedule.metadata.generation, "the spec was not touched")
        }
    }

    @Test("a backup the API server refuses to create: Failed/BackupCreationFailed, an Event, a retry that clears it")
    func creationFailure() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (_, first) = try await createSchedule(environment)
            environment.setTime(first + 1)
            await environment.api.failNextRequests(1, code: 403, method: "POST", pathContains: "talosetcdbackups")
            let failure = await TestHelpers.caught(BackupFailure.self) { _ = try await reconciler.reconcile(key("nightly")) }
            #expect(failure?.reason == .backupCreationFailed)
            let failed = try await environment.schedule("nightly")
            #expect(failed.condition("Failed")?.status == .true && failed.condition("Failed")?.reason == ConditionReason.backupCreationFailed.rawValue)
            #expect(failed.condition("Ready")?.status == .false)
            #expect(failed.status?.lastScheduleTime == nil, "the run is still due")
            #expect(try await environment.eventReasons().contains(ConditionReason.backupCreationFailed.rawValue))
            #expect(try await environment.backupNames().isEmpty)

            _ = try await reconciler.reconcile(key("nightly"))
            #expect(try await environment.backupNames() == ["nightly-\(Int64(first.timeIntervalSince1970))"])
            #expect(try await environment.schedule("nightly").condition("Failed")?.status == .false)
        }
    }

    @Test("a schedule name longer than 63 characters is InvalidName, not a crash")
    func longName() async throws {
        try await ReconcilerEnvironment.with { environment in
            let name = String(repeating: "a", count: 70)
            _ = try await createSchedule(environment, name: name)
            environment.setTime(Date() + 3600)
            #expect(try await reconciler(environment).reconcile(key(name)) == .done)
            let schedule = try await environment.schedule(name)
            #expect(schedule.condition("Failed")?.reason == ConditionReason.invalidName.rawValue)
            #expect(schedule.condition("Failed")?.message.contains("63") == true)
            #expect(try await environment.backupNames().isEmpty)
        }
    }

    @Test("deleting a schedule deletes its backups first, then the schedule goes")
    func deletion() async throws {
        try await ReconcilerEnvironment.with { environment in
            let reconciler = reconciler(environment)
            let (_, first) = try await createSchedule(environment) { $0.concurrencyPolicy = .allow }
            for n in 0..<2 {
                environment.setTime(first + Double(n) * 300 + 1)
                _ = try await reconciler.reconcile(key("nightly"))
            }
            #expect(try await environment.backupNames().count == 2)
            // Backups are created with the backup controller's finalizer already in place (no
            // second write to add it). Here no backup controller runs: one backup is held by a
            // finalizer for a while, the other's finalizer goes as the controller's would.
            let names = try await environment.backupNames()
            let held = try #require(names.first)
            for name in names {
                var backup = try await environment.client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: name)
                #expect(backup.metadata.finalizers == [BackupReconciler.finalizer])
                backup.metadata.finalizers = name == held ? ["example.com/hold"] : nil
                _ = try await environment.client.update(backup, TalosEtcdBackup.resourceType, namespace: "default", name: name)
            }
            var backup: TalosEtcdBackup

            try await environment.client.delete(TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "nightly")
            #expect(try await reconciler.reconcile(key("nightly")) == .requeue(after: .seconds(5)))
            #expect(try await environment.backupNames() == [held], "the unheld backup is gone, the held one is being deleted")
            #expect(try await environment.schedule("nightly").metadata.deletionTimestamp != nil, "the schedule waits for its backups")

            backup = try await environment.client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: held)
            backup.metadata.finalizers = nil
            _ = try await environment.client.update(backup, TalosEtcdBackup.resourceType, namespace: "default", name: held)
            #expect(try await reconciler.reconcile(key("nightly")) == .done)
            #expect(try await environment.backupNames().isEmpty)
            let gone = await TestHelpers.caught(KubernetesError.self) { _ = try await environment.schedule("nightly") }
            #expect(gone?.isNotFound == true)
        }
    }

    @Test("schedule gauges follow the status (last/next run, last success and failure, created, paused) and go with the schedule")
    func metrics() async throws {
        try await ReconcilerEnvironment.with { environment in
            let factory = DescribedMetricsFactory(families: BackupMetrics.families)
            let reconciler = ScheduleReconciler(schedules: environment.scheduleClient, backups: environment.backupClient, events: environment.events,
                                                clock: environment.clock, metrics: BackupMetrics(factory: factory), logger: quietLogger("schedule"))
            func sample(_ name: String) -> Double? {
                metricSample(#"\#(name){namespace="default",schedule="nightly"}"#, in: factory.registry.emitToString())
            }
            let (schedule, first) = try await createSchedule(environment) { $0.concurrencyPolicy = .allow }
            let created = try #require(schedule.metadata.creationTimestamp?.date)
            environment.setTime(created)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(sample(BackupMetrics.created) == created.timeIntervalSince1970)
            #expect(sample(BackupMetrics.nextSchedule) == first.timeIntervalSince1970)
            #expect(sample(BackupMetrics.paused) == 0)
            #expect(sample(BackupMetrics.lastSchedule) == nil, "no run yet")
            #expect(sample(BackupMetrics.lastSuccess) == nil, "no success yet")

            environment.setTime(first + 1)
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(sample(BackupMetrics.lastSchedule) == first.timeIntervalSince1970)
            #expect(sample(BackupMetrics.nextSchedule) == first.timeIntervalSince1970 + 300)
            let firstBackup = try #require(try await environment.backupNames().first)
            try await setStatus(environment, firstBackup, phase: .succeeded, completion: first + 20)
            environment.setTime(first + 301)
            _ = try await reconciler.reconcile(key("nightly"))
            let second = try #require(try await environment.backupNames().last)
            try await setStatus(environment, second, phase: .failed, completion: first + 330)
            try await environment.syncCache()
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(sample(BackupMetrics.lastSuccess) == (first + 20).timeIntervalSince1970)
            #expect(sample(BackupMetrics.lastFailure) == (first + 330).timeIntervalSince1970)

            var paused = try await environment.schedule("nightly")
            paused.spec.paused = true
            _ = try await environment.client.update(paused, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "nightly")
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(sample(BackupMetrics.paused) == 1)
            #expect(sample(BackupMetrics.nextSchedule) == nil, "a paused schedule has no next run")

            try await environment.client.delete(TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "nightly")
            _ = try await reconciler.reconcile(key("nightly"))
            #expect(!factory.registry.emitToString().contains(#"schedule="nightly""#), "a deleted schedule's series are gone")
        }
    }
}

extension TalosEtcdBackupSchedule {
    func condition(_ type: String) -> Condition? { status?.conditions?[type: type] }
}

@Suite("Metric documentation")
struct MetricDocumentationTests {
    @Test("docs/reference/metrics.md's metric tables name every metric family the operator exposes, and each has HELP text")
    func everyFamilyIsDocumented() throws {
        let docs = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/reference/metrics.md"), encoding: .utf8)
        let section = try #require(docs.range(of: "## Metrics")).upperBound
        let metricsSection = String(docs[section...].prefix { _ in true }.split(separator: "\n## ", maxSplits: 1).first ?? "")
        let families = ControllerRuntimeMetrics.families + BackupMetrics.families + ProcessMetrics.families
        #expect(families.count >= 27)
        for family in families {
            #expect(metricsSection.contains("`\(family.name)`"), "\(family.name) is not in docs/reference/metrics.md's Metrics tables")
            #expect(!family.help.isEmpty)
        }
    }
}
