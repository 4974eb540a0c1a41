import BackupOperator
import Foundation
import KubernetesClient
import CustomResources
import TestSupport
import Testing

@Suite("End to end: schedules", .serialized)
struct ScheduleEndToEndTests {
    @Test("kubectl apply of Secrets and a schedule: three ticks leave two verified, restorable backups; pause, resume, delete")
    func scheduledBackupsWithRetention() async throws {
        try await Cluster.with { cluster in
            try await cluster.withOperator { _ in
                try await cluster.apply(try cluster.manifests(schedule: "every-minute", cron: "* * * * *", retention: 2))

                // Three ticks: three backups created; the oldest success is pruned.
                try await cluster.waitFor("a third backup to succeed and retention to prune the first") {
                    let events = try await cluster.events()
                    return events.filter { $0.reason == ConditionReason.backupCreated.rawValue }.count >= 3
                        && events.contains { $0.reason == ConditionReason.backupPruned.rawValue }
                }
                _ = try await cluster.kubectlOK(["patch", "tebs", "every-minute", "--type", "merge", "-p", #"{"spec":{"paused":true}}"#])
                try await cluster.waitFor("the paused schedule to have no active backups and two successful ones") {
                    let schedule = try await cluster.schedule("every-minute")
                    let backups = try await cluster.backups()
                    return schedule.condition("Ready")?.reason == ConditionReason.paused.rawValue && schedule.status?.activeBackups == nil
                        && backups.count == 2 && backups.allSatisfy { $0.phase == .succeeded }
                }

                // Exactly two Succeeded backups remain, each with every status field right,
                // each object restorable into a fresh etcd holding the keys.
                let backups = try await cluster.backups()
                #expect(backups.count == 2)
                let schedule = try await cluster.schedule("every-minute")
                let objects = try await cluster.objects()
                #expect(objects == backups.compactMap(\.status?.filename).sorted(), "objects in S3 are exactly the remaining backups'")
                for backup in backups {
                    let name = try #require(backup.metadata.name)
                    let status = try #require(backup.status)
                    #expect(name.hasPrefix("every-minute-"))
                    let tick = try #require(Int64(name.dropFirst("every-minute-".count)))
                    #expect(tick % 60 == 0, "named after a whole-minute run time")
                    #expect(backup.metadata.labels?[TalosEtcdBackupSchedule.backupScheduleLabel] == "every-minute")
                    #expect(backup.metadata.controllerReference?.uid == schedule.metadata.uid)
                    #expect(backup.metadata.finalizers == [BackupReconciler.finalizer])
                    #expect(status.filename == "\(cluster.prefix)/\(cluster.namespace)/my-controlplane/\(name).db")
                    #expect(status.bucket == cluster.s3.bucket)
                    #expect(status.node == "127.0.0.1")
                    #expect(status.attempts == 1)
                    let start = try #require(status.startTime), completion = try #require(status.completionTime)
                    #expect(start <= completion)
                    #expect(backup.condition("Ready")?.status == .true)
                    #expect(backup.condition("Progressing")?.status == .false)
                    #expect(backup.condition("Ready")?.observedGeneration == backup.metadata.generation)
                    #expect(backup.condition("Failed") == nil)
                    let restored = try await cluster.restoreAndRead(try #require(status.filename))
                    #expect(restored.size == status.size)
                    #expect(restored.sha256 == status.sha256)
                    #expect(restored.k7 == "value-7", "the restored etcd serves the keys written before the snapshot")
                }
                let status = try #require(schedule.status)
                #expect(status.observedGeneration == schedule.metadata.generation)
                #expect(status.lastSuccessfulBackupTime == backups.compactMap(\.status?.completionTime).max())
                let newestTick = backups.compactMap { Int64(($0.metadata.name ?? "").dropFirst("every-minute-".count)) }.max()
                #expect(status.lastScheduleTime.map { Int64($0.date.timeIntervalSince1970) } == newestTick)
                #expect(status.nextScheduleTime == nil, "a paused schedule has no next run")
                #expect(schedule.condition("Ready")?.status == .false)
                let events = try await cluster.events()
                #expect(events.contains { $0.reason == ConditionReason.succeeded.rawValue && $0.type == "Normal" })
                #expect(events.contains { $0.reason == ConditionReason.backupCreated.rawValue && $0.type == "Normal" })

                // Paused: no new backup for three ticks.
                try await Task.sleep(for: Cluster.tick * 3)
                #expect(try await cluster.backups().count == 2, "a paused schedule creates nothing")

                // Resumed: backups come again, and the schedule reports its next run.
                _ = try await cluster.kubectlOK(["patch", "tebs", "every-minute", "--type", "merge", "-p", #"{"spec":{"paused":false}}"#])
                try await cluster.waitFor("a backup after resuming") {
                    let names = try await cluster.backups().compactMap(\.metadata.name)
                    return names.contains { !backups.compactMap(\.metadata.name).contains($0) }
                }
                let resumed = try await cluster.schedule("every-minute")
                #expect(resumed.condition("Ready")?.status == .true)
                #expect(resumed.status?.nextScheduleTime != nil)
                let table = try await cluster.kubectlOK(["get", "tebs"])
                #expect(table.contains("every-minute") && table.contains("* * * * *"))

                // Deleting the schedule deletes every backup and every object before it goes.
                _ = try await cluster.kubectlOK(["delete", "tebs", "every-minute", "--wait=false"])
                try await cluster.waitFor("the schedule, its backups and their objects to be gone") {
                    let gone = try await cluster.kubectl.run(["-n", cluster.namespace, "get", "tebs", "every-minute"]).status != 0
                    return gone
                }
                #expect(try await cluster.backups().isEmpty)
                #expect(try await cluster.objects().isEmpty)
                #expect(try await cluster.uploads().isEmpty)
            }
        }
    }

    @Test("an invalid cron expression gives Failed/InvalidSchedule and an Event; fixing the spec clears it")
    func invalidScheduleThenFixed() async throws {
        try await Cluster.with { cluster in
            try await cluster.withOperator { _ in
                try await cluster.apply(try cluster.manifests(schedule: "broken", cron: "61 * * * *"))
                try await cluster.waitFor("Failed/InvalidSchedule") {
                    let schedule = try await cluster.schedule("broken")
                    return schedule.condition("Failed")?.status == .true && schedule.condition("Failed")?.reason == ConditionReason.invalidSchedule.rawValue
                }
                let broken = try await cluster.schedule("broken")
                #expect(broken.condition("Ready")?.status == .false)
                #expect(broken.condition("Failed")?.message.contains("minute") == true, "the message names the bad field")
                #expect(broken.condition("Failed")?.observedGeneration == broken.metadata.generation)
                let events = try await cluster.events()
                #expect(events.contains { $0.type == "Warning" && $0.reason == ConditionReason.invalidSchedule.rawValue && $0.regarding == "broken" })
                try await Task.sleep(for: Cluster.tick * 2)
                #expect(try await cluster.backups().isEmpty, "an invalid schedule creates no backups")

                _ = try await cluster.kubectlOK(["patch", "tebs", "broken", "--type", "merge", "-p", #"{"spec":{"schedule":"* * * * *"}}"#])
                try await cluster.waitFor("the fixed schedule to be Ready and take a backup") {
                    let schedule = try await cluster.schedule("broken")
                    let backups = try await cluster.backups()
                    return schedule.condition("Failed")?.status == .false && schedule.condition("Ready")?.status == .true
                        && !backups.isEmpty
                }
                let fixed = try await cluster.schedule("broken")
                #expect(fixed.status?.observedGeneration == fixed.metadata.generation)

                // A bad time zone is its own reason.
                _ = try await cluster.kubectlOK(["patch", "tebs", "broken", "--type", "merge", "-p", #"{"spec":{"timeZone":"Mars/Olympus"}}"#])
                try await cluster.waitFor("Failed/InvalidTimeZone") {
                    try await cluster.schedule("broken").condition("Failed")?.reason == ConditionReason.invalidTimeZone.rawValue
                }
            }
        }
    }
}
