import Age
import BackupOperator
import Bbolt
import Crypto
import Foundation
import NIOCore
import SnapshotPipeline
import TalosAPI
import TalosTesting
import Testing
import TestSupport

/// ``SnapshotRecovery``: a backup's plain snapshot streamed to a node waiting to be
/// bootstrapped, through every check of ``SnapshotRestore``; a check that fails at the end of
/// the stream cancels the upload, so the node keeps nothing and is not bootstrapped.
@Suite("Recovery pipeline: restore checks in front of EtcdRecover and Bootstrap")
struct RecoveryPipelineTests {
    /// A real snapshot of an etcd holding k0..k19 and its revision there.
    static func realSnapshot() async throws -> (Data, revision: Int64) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("recovery-pipeline-\(UUID().uuidString).db")
        defer { try? FileManager.default.removeItem(at: file) }
        return try await EtcdInstance.withRunning { etcd in
            let saved = try await etcd.etcdctl(["snapshot", "save", file.path])
            try #require(saved.status == 0, "\(saved.stderr)")
            let status = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", file.path, "-w", "json"])
            let json = try #require(try JSONSerialization.jsonObject(with: status.stdoutData) as? [String: Any])
            return (try Data(contentsOf: file), try #require((json["revision"] as? NSNumber)?.int64Value))
        }
    }

    static func withWaitingNode<T: Sendable>(_ body: (TalosTestServer, TalosClient, TalosEndpoint) async throws -> T) async throws -> T {
        try await TalosTestServer.withRunning(etcdEndpoint: nil, announce: { _ in }) { server in
            let context = try Talosconfig.parse(try server.talosconfig(role: "os:admin"), source: "test")
            return try await body(server, TalosClient(context: context, timeout: .seconds(60)), context.endpoints[0])
        }
    }

    /// The snapshot zstd-compressed and age-encrypted, as the operator stores it.
    static func sealed(_ plain: Data, to identity: AgeIdentity) throws -> [UInt8] {
        let encoder = try SnapshotEncoder(compressionLevel: 3, recipients: [identity.recipient])
        return try encoder.encode(plain) + encoder.finish()
    }

    @Test("an encoded backup recovers: the new etcd serves the snapshot's keys at its revision, and the upload is the plain snapshot")
    func recovers() async throws {
        let (snapshot, revision) = try await Self.realSnapshot()
        let identity = AgeIdentity()
        let stored = try Self.sealed(snapshot, to: identity)
        try await Self.withWaitingNode { server, client, endpoint in
            let restored = try await SnapshotRecovery.recover(client: client, endpoint: endpoint, node: nil) { sink in
                try await SnapshotRestore.decode(ChunkedBytes(data: stored, size: 65_536), encoding: SnapshotEncoding(compressed: true, encrypted: true),
                                                 identities: [identity], record: nil, into: sink)
            }
            #expect(restored.revision == revision && restored.size == Int64(snapshot.count))
            let etcd = try #require(server.etcdEndpoint)
            #expect(try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "get", "k7", "--print-value-only"]).stdout == "value-7\n")
            let status = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "endpoint", "status", "-w", "json"])
            let entries = try #require(try JSONSerialization.jsonObject(with: status.stdoutData) as? [[String: Any]])
            let header = try #require((entries.first?["Status"] as? [String: Any])?["header"] as? [String: Any])
            #expect((header["revision"] as? NSNumber)?.int64Value == revision)
        }
    }

    @Test("a damaged structure (trailer recomputed), a record that does not match, a wrong identity: the upload is cancelled or never starts; the node keeps nothing and is not bootstrapped")
    func failedCheckSendsNothingUsable() async throws {
        let (snapshot, revision) = try await Self.realSnapshot()
        var damaged = snapshot
        damaged[16 + 16] ^= 0x40
        damaged = damaged.prefix(damaged.count - 32) + Data(SHA256.hash(data: damaged.prefix(damaged.count - 32)))
        let identity = AgeIdentity()
        let stored = try Self.sealed(snapshot, to: identity)
        let sha = SHA256.hash(data: Data(stored)).map { String(format: "%02x", $0) }.joined()
        let wrongRevision = StoredBackup(node: "n", size: Int64(stored.count), sha256: sha, snapshotSize: Int64(snapshot.count),
                                         snapshotSHA256: SHA256.hash(data: snapshot).map { String(format: "%02x", $0) }.joined(),
                                         compression: "zstd", encryptedTo: [identity.recipient.fingerprint], revision: revision + 1, totalKeys: nil)
        let cases: [(String, [UInt8], SnapshotEncoding, [AgeIdentity], StoredBackup?)] = [
            ("damaged structure", Array(damaged), SnapshotEncoding(compressed: false, encrypted: false), [], nil),
            ("record mismatch", stored, SnapshotEncoding(compressed: true, encrypted: true), [identity], wrongRevision),
            ("wrong identity", stored, SnapshotEncoding(compressed: true, encrypted: true), [AgeIdentity()], nil),
        ]
        try await Self.withWaitingNode { server, client, endpoint in
            for (what, bytes, encoding, identities, record) in cases {
                let failure = await TestHelpers.caught((any Error).self) {
                    _ = try await SnapshotRecovery.recover(client: client, endpoint: endpoint, node: nil) { sink in
                        try await SnapshotRestore.decode(ChunkedBytes(data: bytes, size: 65_536), encoding: encoding, identities: identities,
                                                         record: record, into: sink)
                    }
                }
                switch what {
                case "damaged structure": #expect(failure is BboltInvalid, "\(what): \(String(describing: failure))")
                case "record mismatch": #expect((failure as? RestoreMismatch)?.what == "etcd revision", "\(what): \(String(describing: failure))")
                default: #expect((failure as? AgeError) == .noMatchingIdentity, "\(what): \(String(describing: failure))")
                }
                try await eventually("\(what): the node drops the partial upload") { !server.hasRecoverySnapshot }
                #expect(server.recoveryUploads == 0 && server.etcdEndpoint == nil, "\(what)")
            }
        }
    }
}

/// The recovery upload's stall bound (a timing test: run apart from the CPU-heavy suites). The
/// bound is 2 s; the test allows 10 s in all, room for a machine with one core kept busy.
@Suite("Recovery pipeline: the upload's stall bound")
struct RecoveryStallTimingTests {
    @Test("a node that stops reading the upload and never answers: RecoveryStalled after the bound, nothing bootstrapped")
    func stalledUpload() async throws {
        let (snapshot, _) = try await RecoveryPipelineTests.realSnapshot()
        try await RecoveryPipelineTests.withWaitingNode { server, client, endpoint in
            server.setFault(.stallRecovery)
            let started = ContinuousClock.now
            let failure = await TestHelpers.caught(RecoveryStalled.self) {
                _ = try await SnapshotRecovery.recover(client: client, endpoint: endpoint, node: nil, stallTimeout: .seconds(2)) { sink in
                    try await SnapshotRestore.decode(ChunkedBytes(data: Array(snapshot), size: 65_536), encoding: SnapshotEncoding(compressed: false, encrypted: false),
                                                     identities: [], record: nil, into: sink)
                }
            }
            #expect((2...9).contains(failure?.seconds ?? 0), "\(String(describing: failure))")
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(server.etcdEndpoint == nil && !server.hasRecoverySnapshot)
        }
    }
}
