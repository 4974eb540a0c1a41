import Age
import BackupOperator
import CustomResources
import Foundation
import KubernetesClient
import ReconcilerTestSupport
import S3
import Testing
import TestSupport

/// `backupStorage.s3.serverSideEncryption` and `storageClass` through the reconciler and the
/// real transfer (moto): every object a backup writes carries them, the snapshot after its
/// record's copy and the state beside it included; invalid values are refused at once.
extension BackupReconcilerTests {
    @Test("SSE-KMS with a key and STANDARD_IA on an encoded backup with its state: the snapshot (after the record's copy) and the state carry both; it restores")
    func writeSettings() async throws {
        try await with { setup in
            try await createStateSecret(setup, marker: "at-rest")
            var spec = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint)
            spec.backupStorage.s3.prefix = setup.prefix
            spec.backupStorage.compression = Compression(type: .zstd)
            spec.backupStorage.encryption = Encryption(age: AgeEncryption(recipients: [AgeIdentity().recipient.description]))
            spec.backupStorage.s3.serverSideEncryption = ServerSideEncryption(type: .kms, kmsKeyID: "alias/etcd-backups")
            spec.backupStorage.s3.storageClass = "STANDARD_IA"
            _ = try await setup.environment.client.create(TalosEtcdBackup(metadata: ObjectMeta(name: "at-rest", namespace: "default"), spec: spec),
                                                          TalosEtcdBackup.resourceType, namespace: "default")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "at-rest")) == .done)
            let status = try #require(try await backup(setup, "at-rest").status)
            #expect(status.phase == .succeeded, "\(String(describing: status.conditions))")
            for key in [try #require(status.filename), try #require(status.stateFilename)] {
                let head = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: key)
                #expect(head.serverSideEncryption == "aws:kms" && head.kmsKeyID?.hasSuffix("alias/etcd-backups") == true, "\(key): \(head)")
                #expect(head.storageClass == "STANDARD_IA", "\(key): \(head)")
            }
            #expect(Self.sha256(try await Self.download(setup, try #require(status.filename))) == status.sha256)
        }
    }

    @Test("the schema refuses an unknown serverSideEncryption type and a storage class that is not a token; a kmsKeyID without aws:kms is InvalidSpec at once, naming the field")
    func invalidWriteSettings() async throws {
        try await with { setup in
            func create(_ name: String, _ change: (inout S3Storage) -> Void) async throws {
                var spec = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint)
                spec.backupStorage.s3.prefix = setup.prefix
                change(&spec.backupStorage.s3)
                _ = try await setup.environment.client.create(TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default"), spec: spec),
                                                              TalosEtcdBackup.resourceType, namespace: "default")
            }
            for (name, change) in [("sse-type", { (s3: inout S3Storage) in s3.serverSideEncryption = ServerSideEncryption(type: .unknown("SSE-C")) }),
                                   ("storage-class", { (s3: inout S3Storage) in s3.storageClass = "standard ia" })] {
                let refused = await TestHelpers.caught(KubernetesError.self) { try await create(name, change) }
                #expect(refused?.isInvalid == true, "\(name): \(String(describing: refused))")
            }
            try await create("sse-key") { $0.serverSideEncryption = ServerSideEncryption(type: .aes256, kmsKeyID: "k") }
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "sse-key")) == .done)
            let failed = try #require(try await backup(setup, "sse-key").status?.conditions?[type: ConditionType.failed])
            #expect(failed.reason == ConditionReason.invalidSpec.rawValue && failed.message.contains("spec.backupStorage.s3.serverSideEncryption.kmsKeyID"),
                    "\(failed.message)")
        }
    }
}
