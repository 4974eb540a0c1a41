import Age
import BackupOperator
import BackupResolution
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import NIOCore
import ReconcilerTestSupport
import S3
import SnapshotPipeline
import Testing
import TestSupport
import Waiting

/// Stored backups checked again on the schedule's `spec.verification`, through the schedule
/// reconciler (the verification runs, the counts) and the verification reconciler (the reads),
/// against moto and real snapshots: intact objects pass; a flipped byte in a plain snapshot, a
/// missing state, a replaced encrypted object each fail with their reason; a store that cannot
/// be read is an error that keeps the backup due.
extension BackupReconcilerTests {
    @Test("verification: intact backups pass; a damaged plain snapshot is SnapshotInvalid, a missing state ObjectMissing, a replaced encrypted object ObjectChanged (Events, counts, metrics); credentials gone: VerificationError, retried, still due")
    func scheduledVerification() async throws {
        try await with { setup in
            let environment = setup.environment
            var template = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint)
            template.backupStorage.s3.prefix = setup.prefix
            var spec = TalosEtcdBackupScheduleSpec(schedule: "0 3 * * *", backupTemplate: BackupTemplate(spec: template))
            spec.paused = true  // no backups of its own: this test makes them
            spec.verification = VerificationSchedule(schedule: "0 4 * * *")
            let schedule = try await environment.client.create(
                TalosEtcdBackupSchedule(metadata: ObjectMeta(name: "nightly", namespace: "default"), spec: spec),
                TalosEtcdBackupSchedule.resourceType, namespace: "default")
            try await createStateSecret(setup, marker: "verified")
            var encoded = template
            encoded.backupStorage.compression = Compression(type: .zstd, level: 3)
            encoded.backupStorage.encryption = Encryption(age: AgeEncryption(recipients: [AgeIdentity().recipient.description]))
            for (name, backupSpec) in [("nightly-1", template), ("nightly-2", encoded), ("nightly-3", encoded)] {
                var backup = schedule.backup(named: name, annotations: [:])
                backup.spec = backupSpec
                _ = try await environment.client.create(backup, TalosEtcdBackup.resourceType, namespace: "default")
                #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: name)) == .done)
                #expect(try await self.backup(setup, name).status?.phase == .succeeded)
            }
            let schedules = ScheduleReconciler(schedules: environment.scheduleClient, backups: environment.backupClient, events: environment.events,
                                               clock: environment.clock, metrics: BackupMetrics(factory: setup.metrics), logger: quietLogger("schedule"))
            let verifier = VerificationReconciler(
                backups: environment.backupClient, schedules: environment.scheduleClient, secrets: KubernetesSecretReader(client: environment.client),
                transfer: TalosToS3Transfer.unhurried(), events: environment.events, clock: environment.clock, metrics: BackupMetrics(factory: setup.metrics),
                logger: quietLogger("verification"))
            let names = ["nightly-1", "nightly-2", "nightly-3"]
            func key(_ name: String) -> ObjectKey { ObjectKey(namespace: "default", name: name) }
            func verifyAll() async throws {
                try await environment.syncCache()
                for name in names { #expect(try await verifier.reconcile(key(name)) == .done, "\(name)") }
            }
            func sample(_ labels: String) -> Double? {
                metricSample("\(BackupMetrics.verificationsTotal){namespace=\"default\",schedule=\"nightly\",\(labels)}",
                             in: setup.metrics.registry.emitToString())
            }

            // Before any verification run: nothing is due, nothing is read.
            _ = try await schedules.reconcile(key("nightly"))
            try await environment.syncCache()
            #expect(try await environment.schedule("nightly").status?.verifications == VerificationCounts(passed: 0, failed: 0, pending: 3))
            try await verifyAll()
            #expect(try await self.backup(setup, "nightly-1").status?.lastVerifiedTime == nil)

            // A day later the 04:00 run was due: every backup is read back and passes.
            environment.setTime(Date() + 86_400)
            guard case .requeue = try await schedules.reconcile(key("nightly")) else {
                Issue.record("a paused schedule with verification wakes for its next verification run")
                return
            }
            let firstRun = try #require(try await environment.schedule("nightly").status?.lastVerificationTime)
            try await verifyAll()
            for name in names {
                let status = try #require(try await self.backup(setup, name).status)
                #expect(status.verification?.result == .passed, "\(name): \(String(describing: status.verification))")
                #expect(status.conditions?[type: ConditionType.verified]?.reason == ConditionReason.verificationPassed.rawValue)
                #expect(try #require(status.lastVerifiedTime).date >= firstRun.date)
            }
            #expect(try await self.backup(setup, "nightly-1").status?.verification?.message?.contains("etcd's trailer and the bbolt structure hold") == true)
            #expect(try await self.backup(setup, "nightly-2").status?.verification?.message?.contains("its state as recorded") == true)
            #expect(sample(#"result="Passed",reason="VerificationPassed""#) == 3)
            _ = try await schedules.reconcile(key("nightly"))
            #expect(try await environment.schedule("nightly").status?.verifications == VerificationCounts(passed: 3, failed: 0, pending: 0))
            // Verified since the run: not read again.
            try await verifyAll()
            #expect(sample(#"result="Passed",reason="VerificationPassed""#) == 3)

            // Damage: a flipped byte in the plain snapshot, the state of nightly-2 gone, and
            // nightly-3's object replaced by other bytes.
            let plain = try #require(try await self.backup(setup, "nightly-1").status?.filename)
            var bytes = try await Self.download(setup, plain)
            bytes[bytes.count / 2] ^= 0xff
            _ = try await setup.s3Client.putObject(bucket: setup.s3.bucket, key: plain, body: ByteBuffer(bytes: bytes))
            try await setup.s3Client.deleteObject(bucket: setup.s3.bucket, key: try #require(try await self.backup(setup, "nightly-2").status?.stateFilename))
            let replaced = try #require(try await self.backup(setup, "nightly-3").status?.filename)
            _ = try await setup.s3Client.putObject(bucket: setup.s3.bucket, key: replaced, body: ByteBuffer(string: "not the backup"))

            environment.setTime(Date() + 2 * 86_400)
            _ = try await schedules.reconcile(key("nightly"))
            try await verifyAll()
            let expected: [(String, ConditionReason, String)] = [
                ("nightly-1", .snapshotInvalid, "is not a sound etcd snapshot any more"),
                ("nightly-2", .objectMissing, ".state.yaml.zst.age is missing from the store"),
                ("nightly-3", .objectChanged, "changed since it was stored: its size is 14"),
            ]
            for (name, reason, message) in expected {
                let status = try #require(try await self.backup(setup, name).status)
                #expect(status.verification?.result == .failed, "\(name)")
                let condition = status.conditions?[type: ConditionType.verified]
                #expect(condition?.status == .false && condition?.reason == reason.rawValue, "\(name): \(String(describing: condition))")
                #expect(condition?.message.contains(message) == true, "\(name): \(String(describing: condition?.message))")
                #expect(status.phase == .succeeded, "a failed verification does not rewrite the backup's outcome")
                #expect(try await eventNotes(setup, reason: reason.rawValue).contains { $0.contains(message) }, "\(name): a Warning Event")
            }
            #expect(sample(#"result="Failed",reason="SnapshotInvalid""#) == 1)
            #expect(sample(#"result="Failed",reason="ObjectMissing""#) == 1)
            #expect(sample(#"result="Failed",reason="ObjectChanged""#) == 1)
            _ = try await schedules.reconcile(key("nightly"))
            #expect(try await environment.schedule("nightly").status?.verifications == VerificationCounts(passed: 0, failed: 3, pending: 0))
            #expect(metricSample("\(BackupMetrics.failedVerifications){namespace=\"default\",schedule=\"nightly\"}",
                                 in: setup.metrics.registry.emitToString()) == 3)

            // The store cannot be read: an error, not a verdict on the object; retried, still due.
            try await environment.client.delete(.secrets, namespace: "default", name: "s3-credentials")
            environment.setTime(Date() + 3 * 86_400)
            _ = try await schedules.reconcile(key("nightly"))
            try await environment.syncCache()
            let before = try await self.backup(setup, "nightly-1").status?.lastVerifiedTime
            await #expect(throws: BackupFailure.self) { _ = try await verifier.reconcile(key("nightly-1")) }
            let status = try #require(try await self.backup(setup, "nightly-1").status)
            #expect(status.verification?.result == .failed, "the last verdict stays while the store cannot be read")
            #expect(status.conditions?[type: ConditionType.verified]?.status == .unknown)
            #expect(status.conditions?[type: ConditionType.verified]?.reason == ConditionReason.verificationError.rawValue)
            #expect(status.conditions?[type: ConditionType.verified]?.message.contains("s3-credentials") == true)
            #expect(status.lastVerifiedTime == before, "still due")
            #expect(sample(#"result="Error",reason="VerificationError""#) == 1)
            // Retried: the same error again sends no second Event.
            await #expect(throws: BackupFailure.self) { _ = try await verifier.reconcile(key("nightly-1")) }
            #expect(try await eventNotes(setup, reason: ConditionReason.verificationError.rawValue).count == 1)
            _ = try await schedules.reconcile(key("nightly"))
            #expect(try await environment.schedule("nightly").status?.verifications?.failed == 3, "still counted as failed: the alert holds")

            // A backup stored after the run was checked as it streamed: not due until the next run.
            try await setSecret(environment, "s3-credentials", ["accessKeyID": setup.s3.credentials.accessKeyID,
                                                                "secretAccessKey": setup.s3.credentials.secretAccessKey])
            var fresh = schedule.backup(named: "nightly-4", annotations: [:])
            fresh.spec = template
            _ = try await environment.client.create(fresh, TalosEtcdBackup.resourceType, namespace: "default")
            #expect(try await setup.reconciler.reconcile(key("nightly-4")) == .done)
            try await environment.syncCache()
            #expect(try await verifier.reconcile(key("nightly-4")) == .done)
            #expect(try await self.backup(setup, "nightly-4").status?.verification == nil)
            _ = try await schedules.reconcile(key("nightly"))
            #expect(try await environment.schedule("nightly").status?.verifications?.pending == 1)
        }
    }
}
