import Age
import BackupOperator
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import S3
import SnapshotPipeline
import Testing
import TestSupport

/// The evidence every backup carries (issue 14): the etcd revision and total keys read from the
/// snapshot's bbolt structure as it streams, in status and in an encoded object's metadata,
/// equal to what `etcdctl snapshot status` says of the stored snapshot; a snapshot whose
/// structure does not check out is never stored, though its SHA-256 trailer matches.
extension BackupReconcilerTests {
    /// `etcdctl snapshot status -w json` of `snapshot`: (revision, totalKey).
    static func etcdctlStatus(_ snapshot: Data) async throws -> (revision: Int64, totalKeys: Int64) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("evidence-\(UUID().uuidString).db")
        try snapshot.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let status = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", file.path, "-w", "json"])
        try #require(status.status == 0, "\(status.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: status.stdoutData) as? [String: Any])
        return (try #require((json["revision"] as? NSNumber)?.int64Value), try #require((json["totalKey"] as? NSNumber)?.int64Value))
    }

    @Test("revision and total keys in status (plain and encoded) and in the encoded object's metadata equal etcdctl snapshot status of the stored snapshot; they follow etcd's writes")
    func revisionAndKeysRecorded() async throws {
        try await with { setup in
            let etcd = try #require(setup.talos?.etcdEndpoint)
            // Writes and a deletion move the revision; the snapshot is what etcdctl reads.
            for index in 0..<30 { _ = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "put", "evidence-\(index)", String(repeating: "v", count: index * 100)]) }
            _ = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "del", "evidence-3"])
            _ = try await createBackup(setup, "plain")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "plain")) == .done)
            let plain = try #require(try await backup(setup, "plain").status)
            #expect(plain.phase == .succeeded, "\(String(describing: plain.conditions))")
            let stored = try await Self.download(setup, try #require(plain.filename))
            let expected = try await Self.etcdctlStatus(stored)
            #expect(plain.revision == expected.revision)
            #expect(plain.totalKeys == expected.totalKeys)
            #expect(expected.revision > 50, "20 keys, 30 more, a deletion: \(expected.revision)")
            #expect(plain.conditions?[type: ConditionType.ready]?.message.contains("etcd revision \(expected.revision), \(expected.totalKeys) keys") == true,
                    "\(String(describing: plain.conditions))")

            _ = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "put", "after-plain", "x"])
            let identity = AgeIdentity()
            try await createEncodedBackup(setup, "sealed", recipients: [identity.recipient.description], secretRef: false)
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "sealed")) == .done)
            let sealed = try #require(try await backup(setup, "sealed").status)
            #expect(sealed.phase == .succeeded, "\(String(describing: sealed.conditions))")
            #expect(sealed.revision == expected.revision + 1, "one more write")
            let key = try #require(sealed.filename)
            let metadata = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: key).metadata
            #expect(metadata["etcd-revision"] == sealed.revision.map { String($0) })
            #expect(metadata["etcd-total-keys"] == sealed.totalKeys.map { String($0) })
            let record = try #require(StoredBackup(metadata: metadata))
            let destination = BackupDestination(s3: try setup.s3.configuration(), bucket: setup.s3.bucket, key: key)
            let collected = Locked(Data())
            let restored = try await SnapshotRestore.download(destination, with: setup.s3Client, encoding: SnapshotEncoding(fileName: key),
                                                              identities: [identity], record: record) { chunk in
                collected.withLock { $0.append(contentsOf: chunk.readableBytesView) }
            }
            let decoded = try await Self.etcdctlStatus(collected.withLock { $0 })
            #expect(sealed.revision == decoded.revision && restored.revision == decoded.revision)
            #expect(sealed.totalKeys == decoded.totalKeys && restored.totalKeys == decoded.totalKeys)

            // A record whose revision differs from the snapshot's is refused on the way back.
            var other = record
            other.revision = (record.revision ?? 0) - 1
            let mismatch = await TestHelpers.caught(RestoreMismatch.self) {
                _ = try await SnapshotRestore.download(destination, with: setup.s3Client, encoding: SnapshotEncoding(fileName: key),
                                                       identities: [identity], record: other) { _ in }
            }
            #expect(mismatch?.what == "etcd revision")
        }
    }

    @Test("a snapshot whose bbolt structure is damaged (trailer recomputed, so it matches) is SnapshotInvalid after 3 attempts, plain or encoded; nothing is stored, no upload left")
    func damagedStructureIsNeverStored() async throws {
        try await with { setup in
            setup.talos!.setFault(.damageStructure)
            defer { setup.talos!.setFault(.none) }
            _ = try await createBackup(setup, "damaged")
            try await createEncodedBackup(setup, "damaged-sealed", recipients: [AgeIdentity().recipient.description], secretRef: false)
            for (name, suffix) in [("damaged", ".db"), ("damaged-sealed", ".db.zst.age")] {
                let key = ObjectKey(namespace: "default", name: name)
                var now = Date()
                for _ in 1...3 {
                    setup.environment.setTime(now)
                    _ = try await setup.reconciler.reconcile(key)
                    now += 100
                }
                let failed = try #require(try await backup(setup, name).status)
                #expect(failed.phase == .failed, "\(name)")
                #expect(failed.attempts == 3)
                let condition = failed.conditions?[type: ConditionType.failed]
                #expect(condition?.reason == ConditionReason.snapshotInvalid.rawValue, "\(name): \(String(describing: condition))")
                #expect(condition?.message.contains("meta page 0: its FNV-64a checksum does not match") == true, "\(String(describing: condition))")
                #expect(condition?.message.contains("nothing was stored") == true)
                #expect(failed.revision == nil && failed.totalKeys == nil)
                let objectKey = "\(setup.prefix)/default/my-controlplane/\(name)\(suffix)"
                #expect(await TestHelpers.caught(S3Error.self) { _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey) }?.kind == .noSuchKey)
                #expect(try await setup.s3Client.multipartUploads(bucket: setup.s3.bucket, key: objectKey).isEmpty)
            }
            #expect(try await setup.environment.eventReasons().filter { $0 == ConditionReason.snapshotInvalid.rawValue }.count >= 2)
        }
    }
}
