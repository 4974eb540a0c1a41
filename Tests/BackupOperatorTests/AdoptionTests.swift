import BackupOperator
import BackupResolution
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import NIOCore
import ReconcilerTestSupport
import S3
import Testing
import TestSupport
import Waiting

/// ``BackupAdoption`` against a real store (Ceph RGW: adopting lists a prefix with a `/`, whose
/// correct signature moto's verifier rejects): a management cluster that lost its backup
/// objects finds them again in the bucket.
extension BackupReconcilerTests {
    @Test("adopt: backups whose Kubernetes objects are gone (Retain) come back Succeeded from the objects' metadata; others' keys are skipped; a second run adopts nothing; the controller never takes them; deleting one (Delete) deletes its object")
    func adoption() async throws {
        try await with(s3Server: "RGW") { setup in
            var template = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint)
            template.backupStorage.s3.prefix = setup.prefix
            template.deletionPolicy = .retain
            let schedule = try await setup.environment.client.create(
                TalosEtcdBackupSchedule(metadata: ObjectMeta(name: "nightly", namespace: "default"),
                                        spec: TalosEtcdBackupScheduleSpec(schedule: "0 3 * * *", backupTemplate: BackupTemplate(spec: template))),
                TalosEtcdBackupSchedule.resourceType, namespace: "default")
            try await createStateSecret(setup, marker: "adopted")
            var encoded = template
            encoded.backupStorage.compression = Compression(type: .zstd, level: 3)
            var original: [String: TalosEtcdBackupStatus] = [:]
            for (name, spec) in [("nightly-1700000000", template), ("nightly-manual-1700003600", encoded)] {
                _ = try await setup.environment.client.create(
                    TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default", labels: [TalosEtcdBackupSchedule.backupScheduleLabel: "nightly"]), spec: spec),
                    TalosEtcdBackup.resourceType, namespace: "default")
                #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: name)) == .done)
                let status: TalosEtcdBackupStatus = try #require(try await backup(setup, name).status)
                original[name] = status
                #expect(original[name]?.phase == .succeeded)
                // The management cluster is lost: the objects stay (Retain), the backups go.
                try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: name)
                _ = try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: name))
            }
            #expect(try await setup.environment.backupNames().isEmpty)
            let foreign = "\(setup.prefix)/default/my-controlplane/by-hand.db"
            _ = try await setup.s3Client.putObject(bucket: setup.s3.bucket, key: foreign, body: ByteBuffer(string: "not ours"))

            let adoption = BackupAdoption(client: setup.environment.client, secrets: KubernetesSecretReader(client: setup.environment.client))
            let outcome = try await adoption.adopt(schedule: "nightly", namespace: "default", now: Date())
            #expect(outcome.adopted.sorted() == ["nightly-1700000000", "nightly-manual-1700003600"])
            #expect(outcome.skipped.keys.sorted() == [foreign])
            // The state objects come back with their snapshots, never as backups of their own.
            #expect(outcome.states == Dictionary(uniqueKeysWithValues: try original.map { (try #require($0.value.stateFilename), $0.key) }))
            for (name, before) in original {
                let adopted = try await backup(setup, name)
                let status = try #require(adopted.status)
                #expect(status.phase == .succeeded && status.filename == before.filename && status.bucket == before.bucket && status.size == before.size)
                #expect(status.stateFilename == before.stateFilename && status.stateSHA256 == before.stateSHA256 && status.stateSHA256 != nil,
                        "the state beside the snapshot is recorded again, plain or encoded")
                #expect(status.conditions?[type: ConditionType.ready]?.reason == ConditionReason.adopted.rawValue)
                #expect(adopted.metadata.labels?[TalosEtcdBackupSchedule.backupScheduleLabel] == "nightly")
                #expect(adopted.metadata.controllerReference?.uid == schedule.metadata.uid)
                #expect(adopted.metadata.annotations?[TalosEtcdBackup.adoptedFromAnnotation] == "s3://\(setup.s3.bucket)/\(before.filename ?? "")")
                #expect(adopted.metadata.annotations?[TalosEtcdBackupSchedule.scheduledTimeAnnotation] != nil)
                if before.compression != nil {
                    // The encoded object carries the full record: everything comes back.
                    #expect(status.sha256 == before.sha256 && status.snapshotSHA256 == before.snapshotSHA256)
                    #expect(status.revision == before.revision && status.totalKeys == before.totalKeys && status.revision != nil)
                } else {
                    #expect(status.sha256 == nil, "a plain object carries no record of its hash")
                }
                // The controller never takes a snapshot for it.
                #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: name)) == .done)
                #expect(try await backup(setup, name).status?.attempts == 0)
            }
            let again = try await adoption.adopt(schedule: "nightly", namespace: "default", now: Date())
            #expect(again.adopted.isEmpty && again.present.sorted() == original.keys.sorted())

            // Deleting an adopted backup with deletionPolicy Delete deletes its object: it
            // carries the UID it was adopted with.
            var adopted = try await backup(setup, "nightly-1700000000")
            adopted.spec.deletionPolicy = .delete
            _ = try await setup.environment.client.update(adopted, TalosEtcdBackup.resourceType, namespace: "default", name: "nightly-1700000000")
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "nightly-1700000000")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "nightly-1700000000")) == .done)
            let missing = await TestHelpers.caught(S3Error.self) {
                _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: original["nightly-1700000000"]?.filename ?? "")
            }
            #expect(missing?.kind == .noSuchKey)
            let stateMissing = await TestHelpers.caught(S3Error.self) {
                _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: original["nightly-1700000000"]?.stateFilename ?? "")
            }
            #expect(stateMissing?.kind == .noSuchKey, "its state goes with it")
            _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: foreign)
        }
    }

    /// A store that accepts the connection and trickles its answer (one byte every 500 ms,
    /// never a whole response head) would hold an adoption run for as long as its request
    /// timeouts and retries allow; the run's own bound ends it with an error that says so.
    @Test("adopt: a run has an overall bound, and a store that trickles its answers hits it with an error that says what did not finish")
    func adoptionIsBounded() async throws {
        let trickling = try await TricklingServer()
        do {
            try await withoutNetwork { setup in
                _ = try await setup.environment.client.create(
                    TalosEtcdBackupSchedule(metadata: ObjectMeta(name: "nightly", namespace: "default"),
                                            spec: TalosEtcdBackupScheduleSpec(schedule: "0 3 * * *", backupTemplate: BackupTemplate(
                                                spec: backupSpec(bucket: "backups", endpoint: trickling.endpoint)))),
                    TalosEtcdBackupSchedule.resourceType, namespace: "default")
                let adoption = BackupAdoption(client: setup.environment.client, secrets: KubernetesSecretReader(client: setup.environment.client))
                let error = await TestHelpers.caught(DeadlineExceeded.self) {
                    _ = try await adoption.adopt(schedule: "nightly", namespace: "default", now: Date(), within: .seconds(5))
                }
                #expect(error?.description == "adopting the objects of schedule default/nightly did not finish within 5.0 seconds", "\(String(describing: error))")
                #expect(trickling.connections >= 1, "the store was asked")
            }
            try await trickling.shutdown()
        } catch {
            try? await trickling.shutdown()
            throw error
        }
    }
}
