@testable import BackupOperator
@testable import SnapshotPipeline
import Crypto
import Foundation
import NIOCore
import S3
import S3TestSupport
import TalosAPI
import TalosTesting
import TestSupport
import Testing

/// Ceph RGW ignores `If-None-Match` on CompleteMultipartUpload, so a stale writer (an operator
/// replica that lost its lease mid-upload) can replace an object right after the new leader
/// stored it. The transfer checks the object after completing it (Talos test server on etcd,
/// Ceph RGW).
@Suite("A stored object replaced by a second writer")
struct ObjectReplacedTests {
    @Test("on Ceph RGW, a second writer replaces the object right after this attempt completed it: ObjectReplaced, never stored; the next attempt checks what is there and takes it with its own hashes")
    func replacedAfterCompletion() async throws {
        try await TalosTestServer.withRunningOnFreshEtcd { talos in
            let rgw = try S3TestServer.named("RGW")
            let client = try rgw.client()
            do {
                let key = "replaced-\(UUID().uuidString.prefix(8).lowercased())/backup.db"
                let destination = BackupDestination(s3: try rgw.configuration(), bucket: rgw.bucket, key: key)
                let context = try Talosconfig.parse(try talos.talosconfig(), source: "test")
                // The stale writer's snapshot: the same etcd, taken before more writes, so the
                // attempt's own snapshot differs from it.
                let etcd = try #require(talos.etcdEndpoint)
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("stale-\(UUID().uuidString.prefix(8)).db")
                defer { try? FileManager.default.removeItem(at: file) }
                let saved = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "snapshot", "save", file.path])
                try #require(saved.status == 0, "\(saved.stderr)")
                let stale = try Data(contentsOf: file)
                for index in 0..<10 { _ = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "put", "later-\(index)", "v"]) }

                var transfer = TalosToS3Transfer.unhurried()
                transfer.afterCompletion = {
                    try await client.putObject(bucket: rgw.bucket, key: key, body: ByteBuffer(bytes: stale),
                                               metadata: [StoredBackup.MetadataKey.owner: "backup-uid"])
                }
                let failure = await #expect(throws: PipelineFailure.self) {
                    _ = try await transfer.store(talos: context, destination: destination, plan: .plain, owner: "backup-uid")
                }
                #expect(failure?.kind == .objectReplaced)
                #expect(failure?.retryable == true)
                #expect(failure?.message.contains("changed right after this attempt stored it") == true, "\(String(describing: failure))")
                #expect(failure?.message.contains("\(stale.count) bytes, owner backup-uid") == true, "names what is there: \(String(describing: failure))")

                // The next attempt finds this backup's object (the stale writer was a replica of
                // the same backup), reads it back through every check, and records its hashes.
                let retaken = try await TalosToS3Transfer.unhurried().store(talos: context, destination: destination, plan: .plain, owner: "backup-uid")
                #expect(retaken.size == Int64(stale.count))
                #expect(retaken.sha256 == SHA256.hash(data: stale).map { String(format: "%02x", $0) }.joined())
                try await client.deleteObject(bucket: rgw.bucket, key: key)

                // Encoded: the check runs before the record is copied on, so the replacement is
                // never given this attempt's record.
                let encodedKey = key.replacingOccurrences(of: ".db", with: ".db.zst")
                var encodedTransfer = TalosToS3Transfer.unhurried()
                encodedTransfer.afterCompletion = {
                    try await client.putObject(bucket: rgw.bucket, key: encodedKey, body: ByteBuffer(bytes: stale),
                                               metadata: [StoredBackup.MetadataKey.owner: "backup-uid"])
                }
                let encodedFailure = await #expect(throws: PipelineFailure.self) {
                    _ = try await encodedTransfer.store(talos: context, destination: BackupDestination(s3: try rgw.configuration(), bucket: rgw.bucket, key: encodedKey),
                                                        plan: SnapshotEncodingPlan(compressionLevel: 3), owner: "backup-uid")
                }
                #expect(encodedFailure?.kind == .objectReplaced)
                let left = try await client.headObject(bucket: rgw.bucket, key: encodedKey)
                #expect(left.metadata[StoredBackup.MetadataKey.sha256] == nil, "no record was copied onto the replacement: \(left.metadata)")
                try await client.deleteObject(bucket: rgw.bucket, key: encodedKey)
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
    }
}
