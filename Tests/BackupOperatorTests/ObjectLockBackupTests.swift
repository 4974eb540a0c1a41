import Age
import BackupOperator
import CustomResources
import Foundation
import KubernetesClient
import ReconcilerTestSupport
import S3
import SnapshotPipeline
import Testing
import TestSupport

/// `backupStorage.s3.objectLock` through the reconciler and the real transfer, on Ceph RGW 16
/// (a bucket created with Object Lock; it applies the lock headers of PutObject only, so the
/// copy that records an encoded backup's metadata gets its retention set afterwards): every
/// object ends locked, the status says until when, a delete of the backup is refused by the
/// store (Events `ObjectLocked`) and, after the deletion timeout, the backup goes with
/// `ObjectLeftInStore` while its objects stay. A bucket without Object Lock fails the backup,
/// leaving nothing. (The expiry of a lock, which takes a day through the API, is tested with
/// locks of seconds in ObjectLockTransferTests and the S3 client's tests.)
extension BackupReconcilerTests {
    @Test("Object Lock on an encoded backup with its state: both locked as asked, lockedUntil in the status; deleting the backup is refused (ObjectLocked), then ObjectLeftInStore, and the objects stay")
    func objectLock() async throws {
        try await with(s3Server: "RGW") { setup in
            let locked = setup.s3.lockedBucket
            try await createStateSecret(setup, marker: "locked")
            var spec = backupSpec(bucket: locked.bucket, endpoint: setup.s3.endpoint)
            spec.backupStorage.s3.prefix = setup.prefix
            spec.backupStorage.compression = Compression(type: .zstd)
            spec.backupStorage.encryption = Encryption(age: AgeEncryption(recipients: [AgeIdentity().recipient.description]))
            spec.backupStorage.s3.objectLock = ObjectLockSettings(mode: .governance, retainDays: 2)
            _ = try await setup.environment.client.create(TalosEtcdBackup(metadata: ObjectMeta(name: "immutable", namespace: "default"), spec: spec),
                                                          TalosEtcdBackup.resourceType, namespace: "default")
            let key = ObjectKey(namespace: "default", name: "immutable")
            let started = Date()
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let status = try #require(try await backup(setup, "immutable").status)
            #expect(status.phase == .succeeded, "\(String(describing: status.conditions))")
            let lockedUntil = try #require(status.lockedUntil?.date, "the status says until when")
            #expect(abs(lockedUntil.timeIntervalSince(started.addingTimeInterval(2 * 86_400))) < 120, "\(lockedUntil)")
            let keys = [try #require(status.filename), try #require(status.stateFilename)]
            for objectKey in keys {
                let head = try await setup.s3Client.headObject(bucket: locked.bucket, key: objectKey)
                #expect(head.objectLockMode == "GOVERNANCE" && head.isLocked(at: Date().addingTimeInterval(86_400)), "\(objectKey): \(head)")
                let refused = await TestHelpers.caught(S3Error.self) {
                    try await setup.s3Client.deleteObject(bucket: locked.bucket, key: objectKey, versionID: head.versionID)
                }
                #expect(refused?.kind == .accessDenied, "the store refuses to delete a locked version: \(String(describing: refused))")
            }
            #expect(Self.sha256(try await Self.download(setup, keys[0], bucket: locked.bucket)) == status.sha256)

            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "immutable")
            guard case .requeue = try await setup.reconciler.reconcile(key) else {
                Issue.record("a locked object is retried for a bounded time, as a permanent failure")
                return
            }
            #expect(try await backup(setup, "immutable").metadata.finalizers == [BackupReconciler.finalizer])
            let lockedNotes = try await eventNotes(setup, reason: ConditionReason.objectLocked.rawValue)
            #expect(lockedNotes.contains { $0.contains("S3 Object Lock (GOVERNANCE)") && $0.contains(keys[0]) && $0.contains("never bypasses") },
                    "\(lockedNotes)")

            setup.environment.setTime(Date() + BackupReconciler.defaultObjectDeletionTimeout + 1)
            #expect(try await setup.reconciler.reconcile(key) == .done)
            #expect(try await setup.environment.backupNames().isEmpty, "deletion finished")
            let left = try await eventNotes(setup, reason: ConditionReason.objectLeftInStore.rawValue)
            #expect(left.count == 1 && left.first?.contains("ObjectLocked:") == true && left.first?.contains("once the lock has expired") == true,
                    "\(left)")
            for objectKey in keys {
                let head = try await setup.s3Client.headObject(bucket: locked.bucket, key: objectKey)
                #expect(head.isLocked(at: Date()), "still there, still locked: \(objectKey)")
            }
        }
    }

    @Test("Object Lock asked of a bucket created without it: UploadFailed, not retried, naming the bucket's missing Object Lock; nothing is left")
    func objectLockWithoutLockedBucket() async throws {
        try await with(s3Server: "RGW") { setup in
            var spec = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint)
            spec.backupStorage.s3.prefix = setup.prefix
            spec.backupStorage.s3.objectLock = ObjectLockSettings(mode: .compliance, retainDays: 1)
            _ = try await setup.environment.client.create(TalosEtcdBackup(metadata: ObjectMeta(name: "unlockable", namespace: "default"), spec: spec),
                                                          TalosEtcdBackup.resourceType, namespace: "default")
            let result = try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "unlockable"))
            let status = try #require(try await backup(setup, "unlockable").status)
            #expect(result == .done, "\(status)")
            let failed = try #require(status.conditions?[type: ConditionType.failed])
            #expect(status.phase == .failed && status.attempts == 1, "no retry can lock a bucket: \(failed.message)")
            #expect(failed.reason == ConditionReason.uploadFailed.rawValue && failed.message.contains("Object Lock"), "\(failed.message)")
            #expect(try await setup.s3Client.listAllObjects(bucket: setup.s3.bucket, prefix: setup.prefix).isEmpty, "nothing stored")
        }
    }

    @Test("a backup that fails after storing locked objects (AES256 that Ceph RGW takes but does not apply): Failed, naming the lock that keeps them; deleting it leaves them with ObjectLeftInStore, never without a record")
    func failedWithLockedObjects() async throws {
        try await with(s3Server: "RGW") { setup in
            let locked = setup.s3.lockedBucket
            try await createStateSecret(setup, marker: "failed-locked")
            var spec = backupSpec(bucket: locked.bucket, endpoint: setup.s3.endpoint)
            spec.backupStorage.s3.prefix = setup.prefix
            spec.backupStorage.s3.objectLock = ObjectLockSettings(mode: .governance, retainDays: 1)
            spec.backupStorage.s3.serverSideEncryption = ServerSideEncryption(type: .aes256)
            _ = try await setup.environment.client.create(TalosEtcdBackup(metadata: ObjectMeta(name: "failed-locked", namespace: "default"), spec: spec),
                                                          TalosEtcdBackup.resourceType, namespace: "default")
            let key = ObjectKey(namespace: "default", name: "failed-locked")
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let status = try #require(try await backup(setup, "failed-locked").status)
            let failed = try #require(status.conditions?[type: ConditionType.failed])
            #expect(status.phase == .failed && failed.reason == ConditionReason.uploadFailed.rawValue, "\(failed.message)")
            #expect(failed.message.contains("they stay in the store: S3 Object Lock (GOVERNANCE) keeps"), "\(failed.message)")
            // The state is stored first, and refused as unencrypted before the snapshot is taken.
            let state = StoredState.key(besideSnapshot: objectKey(setup, "failed-locked"))
            #expect(try await setup.s3Client.headObject(bucket: locked.bucket, key: state).isLocked(at: Date()))

            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "failed-locked")
            #expect(try await setup.reconciler.reconcile(key) == .done)
            #expect(try await setup.environment.backupNames().isEmpty)
            let left = try await eventNotes(setup, reason: ConditionReason.objectLeftInStore.rawValue)
            #expect(left.count == 1 && left.first?.contains("ObjectLocked:") == true && left.first?.contains(state) == true, "\(left)")
        }
    }
}
