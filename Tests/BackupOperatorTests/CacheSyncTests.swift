import BackupOperator
import ControllerRuntime
import Foundation
import KubernetesClient
import KubernetesTesting
import CustomResources
import ReconcilerTestSupport
import TestSupport
import Testing

@Suite("Controllers start only on synced caches")
struct CacheSyncTests {
    @Test("a slow backups list while a backup runs and a run is due (Forbid): the schedule controller waits for it and creates no second backup")
    func scheduleWaitsForTheBackupsCache() async throws {
        try await withCRDServer { server, client in
            // A schedule every minute whose last run was ten minutes ago: a run is due now.
            let schedule = try await client.create(
                TalosEtcdBackupSchedule(metadata: ObjectMeta(name: "busy", namespace: "default"),
                                        spec: TalosEtcdBackupScheduleSpec(schedule: "* * * * *", backupTemplate: BackupTemplate(spec: backupSpec()))),
                TalosEtcdBackupSchedule.resourceType, namespace: "default")
            var withStatus = schedule
            withStatus.status = TalosEtcdBackupScheduleStatus()
            withStatus.status?.lastScheduleTime = KubeTime(Date() - 600)
            _ = try await client.updateStatus(withStatus, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "busy")
            // Its backup of that run is still Running.
            var running = TalosEtcdBackup(
                metadata: ObjectMeta(name: "busy-running", namespace: "default", labels: [TalosEtcdBackupSchedule.backupScheduleLabel: "busy"]),
                spec: backupSpec())
            running.metadata.ownerReferences = [OwnerReference(apiVersion: TalosEtcdBackupSchedule.resourceType.apiVersion, kind: "TalosEtcdBackupSchedule",
                                                               name: "busy", uid: schedule.metadata.uid!, controller: true)]
            running = try await client.create(running, TalosEtcdBackup.resourceType, namespace: "default")
            running.status = TalosEtcdBackupStatus()
            running.status?.phase = .running
            running.status?.attempts = 1
            running.status?.attemptedBy = "another-operator"
            _ = try await client.updateStatus(running, TalosEtcdBackup.resourceType, namespace: "default", name: "busy-running")

            // The backups' list (and so their watch) is held until the schedules' cache has
            // synced and had time to be acted on, however long a loaded machine takes for that.
            // (A fixed delay of "/talosetcdbackups" also delayed "/talosetcdbackupschedules",
            // so the two caches synced at about the same time and the race was barely there.)
            await server.holdRequests(method: "GET", pathContains: "/talosetcdbackups$")
            let watchesBefore = await server.watchesStarted
            // The backup controller's transfer never ends, so the backup stays Running.
            let transfer = ScriptedTransfer(store: { try await Task.sleep(for: .seconds(3_600)); throw CancellationError() })
            let backupOperator = TalosBackupOperator(client: client, options: .init(namespace: "default", transfer: transfer), logger: quietLogger("operator"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await backupOperator.run() }
                // The schedules' informer lists, then watches: the only watch that can start.
                try await eventually("the schedules' informer syncs and watches") { await server.watchesStarted > watchesBefore }
                // A schedule controller that did not wait for the backups' cache would now find
                // no backup and create a second one; a reconcile always writes the schedule
                // (its finalizer, then its status), so nothing written means none ran.
                try await Task.sleep(for: .seconds(2))
                let held = try await client.get(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "busy")
                #expect(held.metadata.finalizers == nil && held.status?.nextScheduleTime == nil,
                        "no schedule reconcile while the backups' cache is not synced: \(String(describing: held.metadata.finalizers)), \(String(describing: held.status))")
                await server.releaseRequests(method: "GET", pathContains: "/talosetcdbackups$")
                // The list, the sync, and a reconcile: however long a loaded machine takes.
                var status: TalosEtcdBackupScheduleStatus?
                try await eventually("the schedule controller reconciles (its status names the next run)") {
                    status = try await client.get(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: "busy").status
                    return status?.nextScheduleTime != nil
                }
                let names = try await client.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default").items.compactMap(\.metadata.name)
                #expect(names == ["busy-running"], "Forbid held the due run: no second backup")
                #expect(status?.activeBackups == ["busy-running"], "the schedule controller did reconcile, with the backup in its cache")
                group.cancelAll()
            }
        }
    }
}
