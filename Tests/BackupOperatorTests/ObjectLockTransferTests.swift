@testable import SnapshotPipeline
import Foundation
import NIOCore
import S3
import S3TestSupport
import TalosAPI
import TalosTesting
import TestSupport
import Testing

/// The transfer under S3 Object Lock, with a lock of a day and one of seconds whose expiry is real (Talos
/// test server on etcd; moto without authentication, whose signature check refuses a version
/// listing of a key with a `/`, and Ceph RGW 16): a stored backup and its state are locked; a
/// delete while the lock holds fails with `objectLocked` and deletes nothing; once it has
/// expired, the delete removes every version of both keys, the record's copy and the one it
/// replaced included, and the delete markers, leaving the keys empty.
@Suite("The transfer under S3 Object Lock")
struct ObjectLockTransferTests {
    @Test("locked while the lock holds, every version gone after it", arguments: ["NOAUTH", "RGW"])
    func lockThenExpiry(serverName: String) async throws {
        try await TalosTestServer.withRunningOnFreshEtcd { talos in
            let server = try S3TestServer.named(serverName).lockedBucket
            let client = try server.client()
            defer { Task { try? await client.shutdown() } }
            let context = try Talosconfig.parse(try talos.talosconfig(), source: "test")
            // A lock of a day, to check what it refuses whatever the machine's load; then one of
            // ten seconds, to see the delete take every version once it has expired. (The store
            // confirms a lock to be at least half the retention from its check, so a shorter
            // one could be refused on a loaded machine.)
            for (retention, expires) in [(Duration.seconds(86_400), false), (.seconds(10), true)] {
                var configuration = try server.configuration()
                configuration.writeSettings.objectLock = .init(mode: .governance, retention: retention)
                let key = "locked-\(UUID().uuidString.prefix(8).lowercased())/backup.db.zst"
                let destination = BackupDestination(s3: configuration, bucket: server.bucket, key: key)
                let stateKey = StoredState.key(besideSnapshot: key)
                let started = Date()
                let stored = try await TalosToS3Transfer.unhurried().store(talos: context, destination: destination, plan: SnapshotEncodingPlan(compressionLevel: 3),
                                                                 owner: "backup-uid", state: Array("kind: Secret\n".utf8))
                #expect(try await client.objectVersions(bucket: server.bucket, key: key).count == 2, "the upload and the record's copy")
                guard expires else {
                    let until = try #require(stored.lockedUntil, "the stored backup says until when it is locked")
                    #expect(until > started.addingTimeInterval(86_000) && until < Date().addingTimeInterval(86_401), "\(until)")
                    let refused = await #expect(throws: PipelineFailure.self) { try await TalosToS3Transfer.unhurried().delete(destination, owner: "backup-uid") }
                    #expect(refused?.kind == .objectLocked, "\(String(describing: refused))")
                    #expect(refused?.message.contains("S3 Object Lock (GOVERNANCE) keeps") == true && refused?.message.contains(key) == true,
                            "\(String(describing: refused))")
                    #expect(try await client.headObject(bucket: server.bucket, key: key).isLocked(at: Date()), "still there")
                    #expect(try await client.headObject(bucket: server.bucket, key: stateKey).isLocked(at: Date()), "the state too")
                    continue
                }
                // The lock may have expired by now on a loaded machine: only its date is checked.
                let until = try #require(try await client.headObject(bucket: server.bucket, key: key).retainUntilDate)
                try await Task.sleep(for: .seconds(max(0, until.timeIntervalSinceNow) + 1.5))
                try await TalosToS3Transfer.unhurried().delete(destination, owner: "backup-uid")
                #expect(try await client.objectVersions(bucket: server.bucket, key: key).isEmpty, "every version and delete marker of the snapshot")
                #expect(try await client.objectVersions(bucket: server.bucket, key: stateKey).isEmpty, "and of the state")
            }
        }
    }

    @Test("an object left unlocked (an earlier attempt's, in a bucket without Object Lock, on moto without authentication, which takes the version listing): refused as not locked as asked (lockNotApplied), and deleted")
    func unlockedObjectRefused() async throws {
        try await TalosTestServer.withRunningOnFreshEtcd { talos in
            let server = try S3TestServer.named("NOAUTH")
            let client = try server.client()
            defer { Task { try? await client.shutdown() } }
            let key = "unlocked-\(UUID().uuidString.prefix(8).lowercased())/backup.db"
            // An earlier attempt of this backup stored a sound snapshot, unlocked.
            let etcd = try #require(talos.etcdEndpoint)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("unlocked-\(UUID().uuidString.prefix(8)).db")
            defer { try? FileManager.default.removeItem(at: file) }
            let saved = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "snapshot", "save", file.path])
            try #require(saved.status == 0, "\(saved.stderr)")
            try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(bytes: try Data(contentsOf: file)),
                                       metadata: [StoredBackup.MetadataKey.owner: "backup-uid"])
            var configuration = try server.configuration()
            configuration.writeSettings.objectLock = .init(mode: .compliance, retainDays: 1)
            let failure = await #expect(throws: PipelineFailure.self) {
                _ = try await TalosToS3Transfer.unhurried().store(talos: try Talosconfig.parse(try talos.talosconfig(), source: "test"),
                                                        destination: BackupDestination(s3: configuration, bucket: server.bucket, key: key),
                                                        plan: .plain, owner: "backup-uid")
            }
            #expect(failure?.kind == .lockNotApplied && failure?.retryable == false, "\(String(describing: failure))")
            #expect(failure?.message.contains("reports no Object Lock on it, not COMPLIANCE") == true && failure?.message.contains("were deleted") == true, "\(String(describing: failure))")
            let gone = await TestHelpers.caught(S3Error.self) { _ = try await client.headObject(bucket: server.bucket, key: key) }
            #expect(gone?.kind == .noSuchKey, "this backup's unlocked object was deleted")
        }
    }
}
