import Crypto
import Foundation
import NIOCore
import TalosAPI
import TalosTesting
import TestSupport
import Testing

/// Recovery through the Talos API (EtcdRecover, then Bootstrap with recover_etcd) against the
/// Talos test server acting as a control plane node waiting to be bootstrapped: the role rules,
/// Talos' refusals, and the faults.
@Suite("Talos recovery: EtcdRecover and Bootstrap against a node waiting to be bootstrapped")
struct RecoveryTests {
    /// A real snapshot of an etcd holding k0..k19.
    static func realSnapshot() async throws -> Data {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("recovery-\(UUID().uuidString).db")
        defer { try? FileManager.default.removeItem(at: file) }
        try await EtcdInstance.withRunning { etcd in
            let saved = try await etcd.etcdctl(["snapshot", "save", file.path])
            try #require(saved.status == 0, "\(saved.stderr)")
        }
        return try Data(contentsOf: file)
    }

    /// A node waiting to be bootstrapped, the lines it announces, and an admin client.
    func withWaitingNode<T: Sendable>(role: String = "os:admin",
                                      _ body: (TalosTestServer, TalosClient, TalosEndpoint, Locked<[String]>) async throws -> T) async throws -> T {
        let announced = Locked<[String]>([])
        return try await TalosTestServer.withRunning(etcdEndpoint: nil, announce: { line in announced.withLock { $0.append(line) } }) { server in
            let context = try Talosconfig.parse(try server.talosconfig(role: role), source: "test")
            return try await body(server, TalosClient(context: context, timeout: .seconds(60)), context.endpoints[0], announced)
        }
    }

    /// Sends `bytes` in 64 KiB chunks.
    static func upload(_ client: TalosClient, _ endpoint: TalosEndpoint, _ bytes: Data) async throws {
        try await client.uploadRecoverySnapshot(endpoint: endpoint, node: nil) { send in
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + 65_536, bytes.count)
                try await send(ByteBuffer(bytes: bytes[offset..<end]))
                offset = end
            }
        }
    }

    @Test("os:admin uploads a real snapshot and bootstraps with recover_etcd: the node announces the new etcd, which serves the snapshot's keys and is what EtcdSnapshot serves next; a second Bootstrap is refused as Talos refuses it")
    func recovers() async throws {
        let snapshot = try await Self.realSnapshot()
        try await withWaitingNode { server, client, endpoint, announced in
            let node = try await client.reachNode(nil)
            #expect(node.endpoint == endpoint && node.tag.hasPrefix("v1."))
            // A node waiting to be bootstrapped has no etcd to take a snapshot of.
            let before = await TestHelpers.caught(TalosAPIError.self) {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in for try await _ in stream {} }
            }
            #expect(before?.grpcCode == "failedPrecondition", "\(String(describing: before))")

            try await Self.upload(client, endpoint, snapshot)
            #expect(server.recoveryUploads == 1 && server.hasRecoverySnapshot)
            try await client.bootstrap(endpoint: endpoint, node: nil, recoverEtcd: true)
            let recovered = try #require(server.etcdEndpoint)
            #expect(announced.withLock { $0 } == ["recovered etcd at \(recovered)"])
            #expect(!server.hasRecoverySnapshot, "used up, as Talos removes it")
            let value = try await EtcdInstance.etcdctl(offline: ["--endpoints", recovered, "get", "k7", "--print-value-only"])
            #expect(value.stdout == "value-7\n")
            let served = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in
                var count = 0
                for try await chunk in stream { count += chunk.readableBytes }
                return count
            }
            #expect(served > 32)

            let again = await TestHelpers.caught(TalosAPIError.self) { try await client.bootstrap(endpoint: endpoint, node: nil, recoverEtcd: true) }
            #expect(again?.grpcCode == "alreadyExists")
            #expect(again?.message == "etcd data directory is not empty")
        }
    }

    @Test("an os:etcd:backup talosconfig may take snapshots but not recover: EtcdRecover and Bootstrap are PermissionDenied under both releases' role rules; nothing is stored", arguments: [
        TalosTestServer.RoleRules.current, .older,
    ])
    func backupRoleMayNotRecover(rules: TalosTestServer.RoleRules) async throws {
        try await withWaitingNode(role: "os:etcd:backup") { server, client, endpoint, _ in
            server.setRoleRules(rules)
            let upload = await TestHelpers.caught(TalosAPIError.self) { try await Self.upload(client, endpoint, Data(count: 4096)) }
            #expect(upload?.code == .permissionDenied)
            let bootstrap = await TestHelpers.caught(TalosAPIError.self) { try await client.bootstrap(endpoint: endpoint, node: nil, recoverEtcd: true) }
            #expect(bootstrap?.code == .permissionDenied)
            #expect(server.recoveryUploads == 0 && !server.hasRecoverySnapshot && server.etcdEndpoint == nil)
        }
    }

    @Test("faults: an upload cut mid-way leaves nothing; a producer that fails cancels the upload with its own error and the node keeps nothing; Bootstrap without an upload, on a node that refuses, or of a corrupt snapshot fails as Talos says and starts no etcd")
    func faults() async throws {
        let snapshot = try await Self.realSnapshot()
        try await withWaitingNode { server, client, endpoint, announced in
            server.setFault(.cutRecoveryUpload(afterBytes: snapshot.count / 2))
            let cut = await TestHelpers.caught(TalosAPIError.self) { try await Self.upload(client, endpoint, snapshot) }
            #expect(cut?.code == .unavailable, "\(String(describing: cut))")
            #expect(!server.hasRecoverySnapshot && server.recoveryUploads == 0)
            server.setFault(.none)

            struct SourceBroke: Error {}
            let broken = await TestHelpers.caught(SourceBroke.self) {
                try await client.uploadRecoverySnapshot(endpoint: endpoint, node: nil) { send in
                    try await send(ByteBuffer(bytes: snapshot.prefix(snapshot.count / 2)))
                    throw SourceBroke()
                }
            }
            #expect(broken != nil, "the producer's own error comes back")
            try await eventually("the node to drop the partial upload") { !server.hasRecoverySnapshot }
            #expect(server.recoveryUploads == 0)

            let nothing = await TestHelpers.caught(TalosAPIError.self) { try await client.bootstrap(endpoint: endpoint, node: nil, recoverEtcd: true) }
            #expect(nothing?.grpcCode == "failedPrecondition" && nothing?.message.contains("upload one with EtcdRecover first") == true)

            try await Self.upload(client, endpoint, snapshot)
            server.setFault(.refuseBootstrap)
            let refused = await TestHelpers.caught(TalosAPIError.self) { try await client.bootstrap(endpoint: endpoint, node: nil, recoverEtcd: true) }
            #expect(refused?.grpcCode == "failedPrecondition" && refused?.message == "bootstrap is not available yet")
            server.setFault(.none)

            var corrupt = snapshot
            corrupt[corrupt.count / 2] ^= 0x01
            try await Self.upload(client, endpoint, corrupt)
            let rejected = await TestHelpers.caught(TalosAPIError.self) { try await client.bootstrap(endpoint: endpoint, node: nil, recoverEtcd: true) }
            #expect(rejected?.message.contains("error recovering from the snapshot") == true, "\(String(describing: rejected))")
            #expect(server.etcdEndpoint == nil && announced.withLock { $0 }.isEmpty, "no etcd was started")
        }
    }
}
