import BackupOperator
import ControllerRuntime
import Foundation
import KubernetesClient
import S3
import ReconcilerTestSupport
import CustomResources
import TestSupport
import Testing

/// `deletionPolicy` through the backup reconciler and the real store (moto with SigV4).
extension BackupReconcilerTests {
    @Test("deletionPolicy Retain: deleting a Succeeded backup leaves its object (an ObjectRetained Event names it) and needs no store; Delete, the default, deletes it")
    func deletionPolicy() async throws {
        try await with { setup in
            var retained = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint)
            retained.backupStorage.s3.prefix = setup.prefix
            retained.deletionPolicy = .retain
            _ = try await setup.environment.client.create(
                TalosEtcdBackup(metadata: ObjectMeta(name: "kept", namespace: "default"), spec: retained), TalosEtcdBackup.resourceType, namespace: "default")
            _ = try await createBackup(setup, "deleted")
            for name in ["kept", "deleted"] {
                #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: name)) == .done)
                let status = try await backup(setup, name).status
                #expect(status?.phase == .succeeded, "\(name): \(String(describing: status?.conditions))")
            }
            // The store is unreachable for the Retain one: it does not matter, nothing is asked of it.
            try await setSecret(setup.environment, "s3-credentials", ["accessKeyID": setup.s3.credentials.accessKeyID, "secretAccessKey": "wrong"])
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "kept")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "kept")) == .done)
            #expect(try await setup.environment.backupNames() == ["deleted"])
            _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey(setup, "kept"))
            #expect(try await setup.environment.eventReasons().contains(ConditionReason.objectRetained.rawValue))

            try await setSecret(setup.environment, "s3-credentials", ["accessKeyID": setup.s3.credentials.accessKeyID, "secretAccessKey": setup.s3.credentials.secretAccessKey])
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "deleted")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "deleted")) == .done)
            #expect(try await setup.environment.backupNames().isEmpty)
            let missing = await TestHelpers.caught(S3Error.self) { _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey(setup, "deleted")) }
            #expect(missing?.kind == .noSuchKey)
        }
    }
}
