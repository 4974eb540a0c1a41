import Foundation
import GRPCCore
import NIOCore
import TalosAPI
import TalosTestServer
import TestSupport
import Testing

@Suite("Talos API client over mutual TLS (Ed25519) against the Talos test server on a real etcd")
struct TalosClientTests {
    /// Runs `body` with an etcd holding k0..k19 and a Talos test server in front of it.
    func withNode<T: Sendable>(_ body: (TalosTestServer) async throws -> T) async throws -> T {
        let etcd = try await EtcdInstance.start()
        for index in 0..<20 { _ = try await etcd.etcdctl(["put", "k\(index)", "value-\(index)"]) }
        do {
            let result = try await TalosTestServer.withRunning(etcdEndpoint: etcd.clientURL, body)
            await etcd.stop()
            return result
        } catch {
            await etcd.stop()
            throw error
        }
    }

    func client(_ server: TalosTestServer, role: String = "os:etcd:backup") throws -> (TalosClient, TalosEndpoint) {
        let context = try Talosconfig.parse(try server.talosconfig(role: role), source: "test")
        return (TalosClient(context: context, timeout: .seconds(10)), context.endpoints[0])
    }

    @Test("an etcd-backup role takes a verified snapshot that restores; EtcdStatus reports the member")
    func snapshot() async throws {
        try await withNode { server in
            let (client, endpoint) = try client(server)
            let status = try await client.etcdStatus(endpoint: endpoint, node: nil)
            #expect(status.dbSize > 0)
            #expect(status.memberID != 0)
            let bytes = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in
                var all: [UInt8] = []
                for try await chunk in stream { all += chunk.readableBytesView }
                return all
            }
            #expect(bytes.count > 32)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("talos-snapshot-\(UUID().uuidString).db")
            try Data(bytes).write(to: file)
            var environment = ProcessInfo.processInfo.environment
            environment["ETCDCTL_API"] = "3"
            let check = try await ProcessRunner.run("/usr/bin/etcdctl", ["snapshot", "status", file.path], environment: environment)
            #expect(check.status == 0, "\(check.stderr)")
        }
    }

    @Test("os:reader may not take a snapshot (PermissionDenied, as Talos answers)")
    func readerRole() async throws {
        try await withNode { server in
            let (client, endpoint) = try client(server, role: "os:reader")
            await #expect(throws: RPCError.self) {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in
                    for try await _ in stream {}
                }
            }
            do {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in for try await _ in stream {} }
            } catch let error as RPCError {
                #expect(error.code == .permissionDenied)
            }
        }
    }

    @Test("a corrupted byte is SnapshotCorrupt; a stream cut mid-way is an error, never a short snapshot")
    func faults() async throws {
        try await withNode { server in
            let (client, endpoint) = try client(server)
            server.setFault(.corruptByte)
            await #expect(throws: SnapshotCorrupt.self) {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in for try await _ in stream {} }
            }
            server.setFault(.failMidStream)
            await #expect(throws: RPCError.self) {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in for try await _ in stream {} }
            }
        }
    }

    @Test("a server certificate from another CA is refused")
    func wrongCA() async throws {
        try await withNode { server in
            let stranger = try TalosPKI()
            let context = try Talosconfig.parse(try stranger.talosconfig(role: "os:admin", endpoints: [server.endpoint]), source: "test")
            let client = TalosClient(context: context, timeout: .seconds(5))
            await #expect(throws: RPCError.self) {
                _ = try await client.etcdStatus(endpoint: context.endpoints[0], node: nil)
            }
        }
    }
}
