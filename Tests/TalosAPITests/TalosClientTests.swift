import Foundation
import GRPCCore
import NIOCore
import TalosAPI
import TalosTesting
import TestSupport
import Testing

@Suite("Talos API client over mutual TLS (Ed25519) against the Talos test server on a real etcd")
struct TalosClientTests {
    /// Runs `body` with an etcd holding k0..k19 and a Talos test server in front of it.
    func withNode<T: Sendable>(_ body: (TalosTestServer) async throws -> T) async throws -> T {
        try await TalosTestServer.withRunningOnFreshEtcd(body)
    }

    func client(_ server: TalosTestServer, role: String = "os:etcd:backup") throws -> (TalosClient, TalosEndpoint) {
        let context = try Talosconfig.parse(try server.talosconfig(role: role), source: "test")
        return (TalosClient(context: context, timeout: .seconds(60)), context.endpoints[0])
    }

    @Test("an etcd-backup role takes a verified snapshot that restores and serves the keys; EtcdStatus reports the member")
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
            let directory = try makeTemporaryDirectory("talos-snapshot")
            defer { removeTemporaryDirectory(directory) }
            let file = directory.appendingPathComponent("snapshot.db")
            try Data(bytes).write(to: file)
            let check = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", file.path])
            #expect(check.status == 0, "\(check.stderr)")
            // It restores into a fresh etcd that serves the keys written before the snapshot.
            let value = try await EtcdInstance.restoring(file).stopping { try await $0.etcdctl(["get", "k7", "--print-value-only"]) }
            #expect(value.stdout == "value-7\n")
        }
    }

    @Test("os:reader may not take a snapshot (PermissionDenied, as Talos answers)")
    func readerRole() async throws {
        try await withNode { server in
            let (client, endpoint) = try client(server, role: "os:reader")
            await #expect(throws: TalosAPIError.self) {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in
                    for try await _ in stream {}
                }
            }
            do {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in for try await _ in stream {} }
            } catch let error as TalosAPIError {
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
            await #expect(throws: TalosAPIError.self) {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in for try await _ in stream {} }
            }
            server.setFault(.nodeErrorMidStream)
            let error = await #expect(throws: TalosAPIError.self) {
                _ = try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in for try await _ in stream {} }
            }
            #expect(error?.code == .unavailable)
            #expect(error?.message == "snapshot stream failed on node talos-test-node: etcd snapshot failed: context canceled")
        }
    }

    @Test("a consumer that stops reading stops the node: flow control holds it to the receive window and a few buffered reads, not the snapshot")
    func backpressure() async throws {
        try await TalosTestServer.withRunning(etcdEndpoint: nil) { server in
            server.serveSyntheticSnapshots(size: 64 << 20)
            let (client, endpoint) = try client(server)
            let paused = Locked(false)
            let release = AsyncStream<Void>.makeStream()
            let task = Task {
                try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in
                    var total = 0
                    for try await chunk in stream {
                        total += chunk.readableBytes
                        if !paused.withLock({ $0 }) {
                            paused.withLock { $0 = true }
                            for await _ in release.stream { break }
                        }
                    }
                    return total
                }
            }
            try await eventually("the consumer has its first chunk") { paused.withLock { $0 } }
            // Wait until the server stops getting further (it is blocked), then look.
            var last = -1
            while last != server.syntheticBytesWritten {
                last = server.syntheticBytesWritten
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(last > 0)
            #expect(last < 16 << 20, "the node ran \(last) bytes ahead of a consumer that stopped; window \(TalosClient.receiveWindow)")
            release.continuation.yield()
            release.continuation.finish()
            #expect(try await task.value == 64 << 20 + 32, "and the stream resumes, whole")
        }
    }

    @Test("an endpoint that accepts the connection and never answers is DeadlineExceeded after the client's timeout, not a hang")
    func silentEndpoint() async throws {
        try await withNode { server in
            let listener = try SilentListener()
            defer { listener.close() }
            let context = try Talosconfig.parse(try server.talosconfig(), source: "test")
            let client = TalosClient(context: context, timeout: .seconds(1))
            let error = await #expect(throws: TalosAPIError.self) {
                _ = try await client.etcdSnapshot(endpoint: TalosEndpoint(host: "127.0.0.1", port: listener.port), node: nil) { stream in
                    for try await _ in stream {}
                }
            }
            #expect(error?.code == .deadlineExceeded)
            #expect(error?.message == "no response to EtcdSnapshot within 1.0 seconds")
        }
    }

    @Test("a server certificate from another CA is refused, by EtcdStatus and by EtcdSnapshot (Unavailable, naming the TLS failure: the next target is tried)")
    func wrongCA() async throws {
        try await withNode { server in
            let stranger = try TalosPKI()
            let context = try Talosconfig.parse(try stranger.talosconfig(role: "os:admin", endpoints: [server.endpoint]), source: "test")
            let client = TalosClient(context: context, timeout: .seconds(60))
            await #expect(throws: TalosAPIError.self) {
                _ = try await client.etcdStatus(endpoint: context.endpoints[0], node: nil)
            }
            let error = await #expect(throws: TalosAPIError.self) {
                _ = try await client.etcdSnapshot(endpoint: context.endpoints[0], node: nil) { stream in for try await _ in stream {} }
            }
            #expect(error?.code == .unavailable)
            #expect(error?.message.contains("handshake") == true, "the TLS failure is named: \(error?.message ?? "")")
        }
    }

    @Test("EtcdSnapshot to a port nobody listens on is Unavailable (the next target is tried)")
    func refused() async throws {
        let listener = try SilentListener()
        let port = listener.port
        listener.close()  // now refused
        let pki = try TalosPKI()
        let context = try Talosconfig.parse(try pki.talosconfig(role: "os:etcd:backup", endpoints: ["127.0.0.1:\(port)"]), source: "test")
        let error = await #expect(throws: TalosAPIError.self) {
            _ = try await TalosClient(context: context, timeout: .seconds(60)).etcdSnapshot(endpoint: context.endpoints[0], node: nil) { stream in
                for try await _ in stream {}
            }
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.hasPrefix("cannot connect to 127.0.0.1:\(port)") == true, "\(error?.message ?? "")")
    }

    /// No node is needed (the listener never answers), and none is started: under the suite's
    /// load a fresh etcd can take a minute. The client's own timeout bounds the test: were the
    /// cancellation not heeded, the head's deadline would end it as DeadlineExceeded, a failure
    /// here, not a hang.
    @Test("cancelling while the node withholds its answer is a cancellation, not an unreachable node")
    func cancelledBeforeAnswer() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let context = try Talosconfig.parse(try TalosPKI().talosconfig(role: "os:etcd:backup", endpoints: ["127.0.0.1:\(listener.port)"]),
                                            source: "test")
        let client = TalosClient(context: context, timeout: .seconds(30))
        let task = Task {
            try await client.etcdSnapshot(endpoint: TalosEndpoint(host: "127.0.0.1", port: listener.port), node: nil) { stream in
                for try await _ in stream {}
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
    }

    @Test("the first endpoint down: the next one serves, and the source says which")
    func failover() async throws {
        try await withNode { server in
            let dead = "127.0.0.1:\(TestHelpers.freePort())"
            let context = try Talosconfig.parse(try server.talosconfig(endpointsBefore: [dead]), source: "test")
            let client = TalosClient(context: context, timeout: .seconds(60))
            let (source, size) = try await client.snapshot { source, stream in
                var size = 0
                for try await chunk in stream { size += chunk.readableBytes }
                return (source, size)
            }
            #expect(source.endpoint.description == server.endpoint)
            #expect((source.status?.dbSize ?? 0) > 0)
            #expect(size > 32)

            let nowhere = try Talosconfig.parse(try server.pki.talosconfig(role: "os:admin", endpoints: [dead]), source: "test")
            await #expect(throws: TalosUnreachable.self) {
                _ = try await TalosClient(context: nowhere, timeout: .seconds(60)).snapshot { _, stream in for try await _ in stream {} }
            }
        }
    }

    @Test("the node metadata reaches the server; the first node down: the next node serves; no nodes: no metadata")
    func nodes() async throws {
        try await withNode { server in
            server.setUnreachableNodes(["10.5.0.1"])
            let context = try Talosconfig.parse(try server.talosconfig(nodes: ["10.5.0.1", "10.5.0.2"]), source: "test")
            let (source, size) = try await TalosClient(context: context, timeout: .seconds(60)).snapshot { source, stream in
                var size = 0
                for try await chunk in stream { size += chunk.readableBytes }
                return (source, size)
            }
            #expect(source.node == "10.5.0.2")
            #expect(size > 32)
            #expect(server.snapshotNodes == ["10.5.0.2"], "the snapshot call targeted the second node by metadata")

            // Every node down: TalosUnreachable naming each.
            server.setUnreachableNodes(["10.5.0.1", "10.5.0.2"])
            let unreachable = await TestHelpers.caught(TalosUnreachable.self) {
                _ = try await TalosClient(context: context, timeout: .seconds(60)).snapshot { _, stream in for try await _ in stream {} }
            }
            #expect(unreachable?.failures.count == 2)
            #expect(unreachable?.description.contains("node 10.5.0.1") == true)

            // Without nodes the endpoint itself is asked: no node metadata.
            let direct = try Talosconfig.parse(try server.talosconfig(), source: "test")
            _ = try await TalosClient(context: direct, timeout: .seconds(60)).snapshot { _, stream in for try await _ in stream {} }
            #expect(server.snapshotNodes.last == "")
        }
    }

    @Test("an ECDSA P-256 client certificate works too")
    func ecdsaClientCertificate() async throws {
        try await withNode { server in
            let context = try Talosconfig.parse(try server.talosconfig(keyType: .p256), source: "test")
            #expect(context.keyPEM.contains("PRIVATE KEY") && !context.keyPEM.contains("ED25519"))
            let size = try await TalosClient(context: context, timeout: .seconds(60)).snapshot { _, stream in
                var size = 0
                for try await chunk in stream { size += chunk.readableBytes }
                return size
            }
            #expect(size > 32)
        }
    }

    @Test("an expired client certificate is refused")
    func expiredCertificate() async throws {
        try await withNode { server in
            let context = try Talosconfig.parse(try server.talosconfig(role: "os:admin", notAfter: Date() - 60), source: "test")
            let client = TalosClient(context: context, timeout: .seconds(60))
            await #expect(throws: TalosAPIError.self) { _ = try await client.etcdStatus(endpoint: context.endpoints[0], node: nil) }
        }
    }

    @Test("cancelling the consumer cancels the RPC: the server sees it cancelled")
    func cancellation() async throws {
        try await withNode { server in
            server.setFault(.stall)
            let (client, endpoint) = try client(server)
            let received = Locked(0)
            let task = Task {
                try await client.etcdSnapshot(endpoint: endpoint, node: nil) { stream in
                    for try await chunk in stream { received.withLock { $0 += chunk.readableBytes } }
                }
            }
            try await eventually("the first chunk arrived") { received.withLock { $0 } > 0 }
            task.cancel()
            _ = await task.result
            try await eventually("the server saw the cancellation") { server.cancelledSnapshots == 1 }
        }
    }
}

@Suite("EtcdStatus is best effort (Talos role rules differ between releases)")
struct EtcdStatusRoleRulesTests {
    func snapshotSize(_ server: TalosTestServer, role: String) async throws -> (Int, SnapshotSource) {
        let context = try Talosconfig.parse(try server.talosconfig(role: role), source: "test")
        let client = TalosClient(context: context, timeout: .seconds(60))
        return try await client.snapshot { source, stream in
            var size = 0
            for try await chunk in stream { size += chunk.readableBytes }
            return (size, source)
        }
    }

    @Test("recent Talos: os:etcd:backup may call EtcdStatus, and the source carries it")
    func currentRules() async throws {
        try await TalosTestServer.withRunningOnFreshEtcd { server in
            let (size, source) = try await snapshotSize(server, role: "os:etcd:backup")
            #expect(size > 32)
            #expect((source.status?.dbSize ?? 0) > 0)
            #expect(server.statusCalls == 1)
        }
    }

    @Test("older Talos: EtcdStatus is os:admin only; an os:etcd:backup talosconfig still takes the snapshot, without status")
    func olderRules() async throws {
        try await TalosTestServer.withRunningOnFreshEtcd { server in
            server.setRoleRules(.older)
            let (size, source) = try await snapshotSize(server, role: "os:etcd:backup")
            #expect(size > 32, "the snapshot was taken")
            #expect(source.status == nil)
            #expect(server.statusCalls == 1, "EtcdStatus was tried and refused")
            // os:admin still gets the status on an older release; os:reader gets neither.
            let (_, adminSource) = try await snapshotSize(server, role: "os:admin")
            #expect(adminSource.status != nil)
            await #expect(throws: TalosAPIError.self) { _ = try await snapshotSize(server, role: "os:reader") }
        }
    }
}

/// A TCP port on 127.0.0.1 that completes connections (the kernel's backlog) and never reads
/// or writes: a node that hangs.
final class SilentListener: Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && listen(descriptor, 8) == 0 && getsockname(descriptor, address, &length) == 0
            }
        }
        guard bound else {
            _ = Glibc.close(descriptor)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(descriptor) }
}
