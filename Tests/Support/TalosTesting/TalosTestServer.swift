import Bbolt
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import NIOTLS
import SwiftASN1
import SwiftProtobuf
import Synchronization
import TalosAPI
import TestProcesses
import X509

/// A Talos node for tests: `machine.MachineService` (EtcdSnapshot, EtcdStatus, Version,
/// EtcdRecover, Bootstrap) over gRPC with mutual TLS and Ed25519 certificates like Talos', the
/// Talos role taken from the client certificate's Organization (`os:reader` may not take
/// snapshots, only `os:admin` may recover, as in Talos), and snapshots served from a real etcd.
/// Faults on demand: fail mid-stream, corrupt one byte, stall; cut a recovery upload, refuse
/// a bootstrap.
///
/// Recovery as Talos' machined does it (`v1alpha1_server.go`, `services/etcd.go`): EtcdRecover
/// stores the uploaded snapshot (a broken upload leaves none); Bootstrap refuses while the
/// node's etcd runs ("etcd data directory is not empty", AlreadyExists), and with
/// `recover_etcd` restores the uploaded snapshot (`etcdctl snapshot restore`, which checks its
/// SHA-256 trailer unless `recover_skip_hash_check`) into a fresh data directory, starts an
/// etcd on it, announces `recovered etcd at <client URL>`, and serves snapshots from it.
public final class TalosTestServer: Sendable {
    public enum Fault: Sendable, Equatable {
        case none
        /// Ends the stream with an error after the first chunk.
        case failMidStream
        /// After the first chunk, a message whose metadata carries an error, as Talos' apid
        /// reports a node that failed behind it.
        case nodeErrorMidStream
        /// Flips one bit in the middle of the snapshot.
        case corruptByte
        /// Damages the bbolt structure (a byte of the first meta page's root) and recomputes the
        /// SHA-256 trailer, so the trailer matches: only a structure check finds it.
        case damageStructure
        /// Sends the first chunk, then nothing until the call is cancelled.
        case stall
        /// Streams at about this rate, so a test can act while a transfer is under way.
        case throttle(bytesPerSecond: Int)
        /// Breaks an EtcdRecover upload off once this many bytes have arrived.
        case cutRecoveryUpload(afterBytes: Int)
        /// Bootstrap answers as a node that is not ready for it (FailedPrecondition).
        case refuseBootstrap
        /// EtcdRecover stops reading the upload and never answers, until the call is cancelled.
        case stallRecovery
    }

    /// Which Talos release's role rules the server applies (siderolabs/talos,
    /// `internal/app/machined/pkg/system/services/machined.go`; docs/design.md, Test
    /// environment).
    public enum RoleRules: Sendable {
        /// Recent releases: EtcdSnapshot for os:admin, os:operator, os:etcd:backup; EtcdStatus
        /// for those and os:reader.
        case current
        /// Older releases: EtcdSnapshot for os:admin and os:etcd:backup; EtcdStatus for os:admin
        /// only, so a least-privilege talosconfig cannot call it.
        case older

        public var snapshotRoles: Set<String> {
            switch self {
            case .current: ["os:admin", "os:operator", "os:etcd:backup"]
            case .older: ["os:admin", "os:etcd:backup"]
            }
        }

        public var statusRoles: Set<String> {
            switch self {
            case .current: ["os:admin", "os:operator", "os:etcd:backup", "os:reader"]
            case .older: ["os:admin"]
            }
        }

        /// EtcdRecover and Bootstrap: `os:admin` only, in every release.
        public var recoveryRoles: Set<String> { ["os:admin"] }
    }

    public let pki: TalosPKI
    let state = Mutex(State())
    /// Where uploaded recovery snapshots and recovered data directories go.
    let workDirectory: URL
    let announce: @Sendable (String) -> Void

    struct State {
        /// The etcd snapshots come from; nil while the node waits to be bootstrapped.
        var etcdEndpoint: String?
        /// The uploaded recovery snapshot, until a Bootstrap uses it.
        var recoverySnapshot: URL?
        var recoveredEtcd: EtcdInstance?
        var recoveryUploads = 0
        var syntheticSnapshotSize: Int?
        var syntheticCompressible = false
        /// Bytes per message of a snapshot stream (Talos sends 1,024).
        var messageSize = TalosTestServer.talosMessageSize
        var fault = Fault.none
        var roles: [String: String] = [:]
        var cancelledSnapshots = 0
        var syntheticBytesWritten = 0
        var port = 0
        var snapshotNodes: [String] = []
        var unreachableNodes: Set<String> = []
        var roleRules = RoleRules.current
        var statusCalls = 0
    }

    /// Port to listen on; 0 picks a free one.
    public let requestedPort: Int

    /// A node whose etcd serves at `etcdEndpoint`, or, with nil, a control plane node waiting
    /// to be bootstrapped (as after `talosctl reset`), which can be recovered. `announce`
    /// receives the recovery's `recovered etcd at <client URL>` line.
    public init(etcdEndpoint: String?, port: Int = 0, announce: @escaping @Sendable (String) -> Void = { print($0) }) throws {
        self.requestedPort = port
        self.pki = try TalosPKI()
        self.announce = announce
        self.workDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("talos-test-node-\(UUID().uuidString)")
        state.withLock { $0.etcdEndpoint = etcdEndpoint }
    }

    /// The etcd snapshots come from (a recovered one after a recovery); nil while the node
    /// waits to be bootstrapped.
    public var etcdEndpoint: String? { state.withLock { $0.etcdEndpoint } }

    /// EtcdRecover uploads completed so far.
    public var recoveryUploads: Int { state.withLock { $0.recoveryUploads } }

    /// Whether an uploaded snapshot waits for a Bootstrap.
    public var hasRecoverySnapshot: Bool { state.withLock { $0.recoverySnapshot != nil } }

    /// Writes `ca.crt` and `admin.talosconfig`, `etcd-backup.talosconfig`, `reader.talosconfig`
    /// (roles os:admin, os:etcd:backup, os:reader) into `directory`.
    public func writePKI(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(pki.caPEM.utf8).write(to: directory.appendingPathComponent("ca.crt"), options: .atomic)
        for (file, role) in [("admin", "os:admin"), ("etcd-backup", "os:etcd:backup"), ("reader", "os:reader")] {
            try Data(try talosconfig(role: role).utf8).write(to: directory.appendingPathComponent("\(file).talosconfig"), options: .atomic)
        }
    }

    public var port: Int { state.withLock { $0.port } }
    public var endpoint: String { "127.0.0.1:\(port)" }

    public func setFault(_ fault: Fault) { state.withLock { $0.fault = fault } }

    /// Applies the role rules of a recent (the default) or an older Talos release.
    public func setRoleRules(_ rules: RoleRules) { state.withLock { $0.roleRules = rules } }

    /// EtcdStatus calls answered so far (refused ones included).
    public var statusCalls: Int { state.withLock { $0.statusCalls } }

    /// Serve generated bytes of this size (plus a valid SHA-256 trailer) instead of a real etcd
    /// snapshot, produced as they are sent: for measuring the client on snapshots larger than
    /// a test etcd holds. A size of whole 4 KiB pages is a sound bbolt database (an empty `key`
    /// bucket, the generated bytes as its free pages), as an etcd snapshot is. Random bytes, which zstd cannot shrink; `compressible` zeroes the last
    /// 3 KiB of every 4 KiB page instead (zstd shrinks that about fourfold: pages partly free,
    /// as bbolt's are; a real snapshot compresses further). nil serves real snapshots again.
    public func serveSyntheticSnapshots(size: Int?, compressible: Bool = false) {
        state.withLock {
            $0.syntheticSnapshotSize = size
            $0.syntheticCompressible = compressible
        }
    }

    /// Bytes per `common.Data` message of a snapshot stream: what Talos' machined sends
    /// (EtcdSnapshot reads etcd's snapshot through `pkg/chunker/stream`, whose default chunk
    /// is 1,024 bytes), so a client meets as many messages as it would in production.
    public static let talosMessageSize = 1024

    /// Sends snapshots in messages of `size` bytes instead (a benchmark that isolates what
    /// follows the stream).
    public func setMessageSize(_ size: Int) { state.withLock { $0.messageSize = max(1, size) } }

    /// The `node` metadata of each EtcdSnapshot call, in order ("" for a call without one).
    public var snapshotNodes: [String] { state.withLock { $0.snapshotNodes } }

    /// Nodes this server, acting as the endpoint's proxy, cannot reach: calls targeting them
    /// get what Talos' apid answers for a node that is down (EtcdStatus: a message whose
    /// metadata carries the error; EtcdSnapshot: Unavailable).
    public func setUnreachableNodes(_ nodes: Set<String>) { state.withLock { $0.unreachableNodes = nodes } }

    /// Snapshot calls whose client went away before the end.
    public var cancelledSnapshots: Int { state.withLock { $0.cancelledSnapshots } }

    /// Bytes of generated snapshots handed to the transport so far: how far the server got
    /// ahead of a client (HTTP/2 flow control holds it back).
    public var syntheticBytesWritten: Int { state.withLock { $0.syntheticBytesWritten } }

    /// A talosconfig for `role` pointing at this server (and `extraEndpoints` first, when given).
    public func talosconfig(role: String = "os:etcd:backup", endpointsBefore: [String] = [], nodes: [String] = [],
                            keyType: TalosPKI.ClientKeyType = .ed25519, notAfter: Date = Date() + 86_400) throws -> String {
        try pki.talosconfig(role: role, endpoints: endpointsBefore + [endpoint], nodes: nodes, keyType: keyType, notAfter: notAfter)
    }

    /// Runs `body` with a server in front of a fresh etcd holding keys `k0`...`k19` (values
    /// `value-<n>`); stops both afterwards.
    public static func withRunningOnFreshEtcd<T: Sendable>(_ body: (TalosTestServer) async throws -> T) async throws -> T {
        try await EtcdInstance.withRunning { etcd in
            try await withRunning(etcdEndpoint: etcd.clientURL, body)
        }
    }

    /// Runs `body` while the server listens on a free 127.0.0.1 port (nil: a node waiting to be
    /// bootstrapped, whose recovery line goes to `announce`).
    public static func withRunning<T: Sendable>(etcdEndpoint: String?, announce: @escaping @Sendable (String) -> Void = { print($0) },
                                                _ body: (TalosTestServer) async throws -> T) async throws -> T {
        let server = try TalosTestServer(etcdEndpoint: etcdEndpoint, announce: announce)
        return try await whileServing("talos-test-server", { listening in
            try await server.run { listening() }
        }) {
            try await body(server)
        }
    }

    /// Serves until cancelled.
    public func run(onListening: @escaping @Sendable () -> Void = {}) async throws {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(pki.serverCertificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(pki.serverKeyPEM.utf8), format: .pem)))
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pki.caPEM.utf8)))
        tls.certificateVerification = .noHostnameVerification  // a client certificate from the CA is required
        tls.applicationProtocols = ["h2"]
        tls.signingSignatureAlgorithms = [.ed25519]
        tls.verifySignatureAlgorithms = [.ed25519, .ecdsaSecp256R1Sha256]
        let sslContext = try NIOSSLContext(configuration: tls)
        let recorder = self
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: requestedPort),
            // The server side has no customSecure mode: the transport runs "plaintext" HTTP/2 and
            // TLS (with Ed25519, which its .tls settings cannot enable) goes in front of it here.
            transportSecurity: .plaintext,
            config: .defaults { config in
                config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let ssl = NIOSSLServerHandler(context: sslContext)
                        try channel.pipeline.syncOperations.addHandler(ssl, position: .first)
                        try channel.pipeline.syncOperations.addHandler(RoleRecorder(server: recorder), position: .after(ssl))
                    }
                }
            })
        let service = MachineService(server: self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withGRPCServer(transport: transport, services: [service]) { _ in
                    try await Task.sleep(for: .seconds(1_000_000_000))
                }
            }
            if let address = try await transport.listeningAddress.ipv4 {
                state.withLock { $0.port = address.port }
            }
            onListening()
            do {
                try await group.next()
            } catch {
                await stopRecoveredEtcd()
                throw error
            }
            await stopRecoveredEtcd()
        }
    }

    /// Stops an etcd this node recovered and removes its files.
    private func stopRecoveredEtcd() async {
        let recovered = state.withLock { state in
            defer { state.recoveredEtcd = nil }
            return state.recoveredEtcd
        }
        await recovered?.stop()
        try? FileManager.default.removeItem(at: workDirectory)
    }

    func record(role: String, peer: String) { state.withLock { $0.roles[peer] = role } }
    func role(of peer: String) -> String? { state.withLock { $0.roles[peer] } }
}

/// Notes each connection's Talos role (the client certificate's Organization) once TLS is up,
/// keyed by the peer address in the form gRPC reports it (`ipv4:127.0.0.1:port`).
private final class RoleRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let server: TalosTestServer

    init(server: TalosTestServer) { self.server = server }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent,
           let address = context.channel.remoteAddress, let ip = address.ipAddress, let port = address.port {
            let peer = "ipv4:\(ip):\(port)"
            let server = self.server
            context.channel.nioSSL_peerCertificate().whenSuccess { certificate in
                guard let certificate, let parsed = try? Certificate(derEncoded: certificate.toDERBytes()) else { return }
                for rdn in parsed.subject {
                    for attribute in rdn where attribute.type == .RDNAttributeType.organizationName {
                        server.record(role: String(describing: attribute.value), peer: peer)
                    }
                }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// The service at the level that sees request metadata (the `node` a call targets).
private struct MachineService: Machine_MachineService.ServiceProtocol {
    let server: TalosTestServer

    static func node(_ metadata: Metadata) -> String {
        metadata[stringValues: "node"].first(where: { _ in true }) ?? ""
    }

    func etcdSnapshot(request: ServerRequest<Machine_EtcdSnapshotRequest>, context: ServerContext) async throws -> StreamingServerResponse<Common_Data> {
        let node = Self.node(request.metadata)
        server.state.withLock { $0.snapshotNodes.append(node) }
        let role = server.role(of: context.remotePeer) ?? "<none>"
        guard server.state.withLock({ $0.roleRules }).snapshotRoles.contains(role) else {
            throw RPCError(code: .permissionDenied, message: "not authorized")
        }
        if server.state.withLock({ $0.unreachableNodes.contains(node) }) {
            throw RPCError(code: .unavailable, message: "rpc error: code = Unavailable desc = connection error: dial tcp \(node):50000: connect: connection refused")
        }
        return StreamingServerResponse { writer in
            try await snapshot(response: writer, context: context)
            return [:]
        }
    }

    private func snapshot(response: RPCWriter<Common_Data>, context: ServerContext) async throws {
        if let size = server.state.withLock({ $0.syntheticSnapshotSize }) {
            return try await streamSynthetic(size: size, to: response)
        }
        var snapshot = try await takeSnapshot()
        let fault = server.state.withLock { $0.fault }
        if fault == .corruptByte { snapshot[snapshot.count / 2] ^= 0x01 }
        if fault == .damageStructure, snapshot.count > 4096 + 32 {
            snapshot[16 + 16] ^= 0x40  // meta page 0: its root page ID, under its checksum
            snapshot = snapshot.prefix(snapshot.count - 32) + Data(SHA256.hash(data: snapshot.prefix(snapshot.count - 32)))
        }
        let chunk = server.state.withLock { $0.messageSize }
        var offset = 0
        do {
            while offset < snapshot.count {
                let end = min(offset + chunk, snapshot.count)
                var message = Common_Data()
                message.bytes = snapshot[offset..<end]
                try await response.write(message)
                try await Self.pace(message.bytes.count, fault)
                offset = end
                if fault == .failMidStream { throw RPCError(code: .unavailable, message: "etcd snapshot stream failed") }
                if fault == .nodeErrorMidStream {
                    var failure = Common_Data()
                    failure.metadata.hostname = "talos-test-node"
                    failure.metadata.error = "etcd snapshot failed: context canceled"
                    try await response.write(failure)
                    return
                }
                if fault == .stall {
                    try? await context.cancellation.cancelled  // until the client gives up
                    throw CancellationError()
                }
            }
        } catch {
            if context.cancellation.isCancelled { server.state.withLock { $0.cancelledSnapshots += 1 } }
            throw error
        }
    }

    func etcdStatus(request: ServerRequest<Google_Protobuf_Empty>, context: ServerContext) async throws -> ServerResponse<Machine_EtcdStatusResponse> {
        let rules = server.state.withLock { state in
            state.statusCalls += 1
            return state.roleRules
        }
        guard let role = server.role(of: context.remotePeer), rules.statusRoles.contains(role) else {
            throw RPCError(code: .permissionDenied, message: "not authorized")
        }
        let node = Self.node(request.metadata)
        if server.state.withLock({ $0.unreachableNodes.contains(node) }) {
            var entry = Machine_EtcdStatus()
            entry.metadata.hostname = node
            entry.metadata.error = "rpc error: code = Unavailable desc = connection error: dial tcp \(node):50000: connect: connection refused"
            var response = Machine_EtcdStatusResponse()
            response.messages = [entry]
            return ServerResponse(message: response)
        }
        return ServerResponse(message: try await status())
    }

    private func status() async throws -> Machine_EtcdStatusResponse {
        if let size = server.state.withLock({ $0.syntheticSnapshotSize }) {
            var entry = Machine_EtcdStatus()
            entry.metadata.hostname = "talos-test-node"
            entry.memberStatus.dbSize = Int64(size)
            entry.memberStatus.memberID = 1
            entry.memberStatus.leader = 1
            var response = Machine_EtcdStatusResponse()
            response.messages = [entry]
            return response
        }
        let result = try await etcdctl(["endpoint", "status", "-w", "json"])
        guard let entries = try JSONSerialization.jsonObject(with: result.stdoutData) as? [[String: Any]],
              let status = entries.first?["Status"] as? [String: Any] else {
            throw RPCError(code: .internalError, message: "etcdctl endpoint status: \(result.stderr)")
        }
        let header = status["header"] as? [String: Any] ?? [:]
        var member = Machine_EtcdMemberStatus()
        member.memberID = (header["member_id"] as? NSNumber)?.uint64Value ?? 0
        member.dbSize = (status["dbSize"] as? NSNumber)?.int64Value ?? 0
        member.dbSizeInUse = (status["dbSizeInUse"] as? NSNumber)?.int64Value ?? 0
        member.leader = (status["leader"] as? NSNumber)?.uint64Value ?? 0
        member.raftIndex = (status["raftIndex"] as? NSNumber)?.uint64Value ?? 0
        member.raftTerm = (status["raftTerm"] as? NSNumber)?.uint64Value ?? 0
        member.protocolVersion = status["version"] as? String ?? ""
        var entry = Machine_EtcdStatus()
        entry.metadata.hostname = "talos-test-node"
        entry.memberStatus = member
        var response = Machine_EtcdStatusResponse()
        response.messages = [entry]
        return response
    }

    func version(request: ServerRequest<Google_Protobuf_Empty>, context: ServerContext) async throws -> ServerResponse<Machine_VersionResponse> {
        ServerResponse(message: version())
    }

    private func version() -> Machine_VersionResponse {
        var version = Machine_Version()
        version.metadata.hostname = "talos-test-node"
        version.version.tag = "v1.9.0-test"
        version.version.os = "linux"
        version.version.arch = "amd64"
        var response = Machine_VersionResponse()
        response.messages = [version]
        return response
    }

    /// The pause after sending `count` bytes under a throttle fault.
    static func pace(_ count: Int, _ fault: TalosTestServer.Fault) async throws {
        if case .throttle(let rate) = fault, rate > 0 {
            // Nanoseconds: a 1 KiB message at megabytes a second is well under a millisecond.
            try await Task.sleep(for: .nanoseconds(Int64(count) * 1_000_000_000 / Int64(rate)))
        }
    }

    private func streamSynthetic(size: Int, to response: RPCWriter<Common_Data>) async throws {
        let fault = server.state.withLock { $0.fault }
        let compressible = server.state.withLock { $0.syntheticCompressible }
        var hasher = SHA256()
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        var sent = 0
        let chunk = 1 << 20
        let messageSize = server.state.withLock { $0.messageSize }
        var buffer = [UInt8](repeating: 0, count: chunk)
        // A sound bbolt database whose free pages are the generated bytes, as an etcd snapshot
        // is one (sizes that are not whole 4 KiB pages stay bare generated bytes).
        let layout = size % 4096 == 0 && size >= 8 * 4096 ? BboltLayout.emptyDatabasePrefix(pageCount: size / 4096) : []
        while sent < size {
            let count = min(chunk, size - sent)
            buffer.withUnsafeMutableBytes { pointer in
                let words = pointer.bindMemory(to: UInt64.self)
                for index in 0..<(chunk / 8) {
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                    // Compressible: the first 1 KiB of each 4 KiB page random, the rest zero.
                    words[index] = compressible && index % 512 >= 128 ? 0 : state
                }
            }
            if sent < layout.count {
                let end = min(layout.count, sent + count)
                buffer.replaceSubrange(0..<(end - sent), with: layout[sent..<end])
            }
            hasher.update(data: buffer[0..<count])
            var offset = 0
            while offset < count {
                let end = min(offset + messageSize, count)
                var message = Common_Data()
                message.bytes = Data(buffer[offset..<end])
                try await response.write(message)
                server.state.withLock { $0.syntheticBytesWritten += end - offset }
                offset = end
            }
            try await Self.pace(count, fault)
            sent += count
        }
        var trailer = Common_Data()
        trailer.bytes = Data(hasher.finalize())
        try await response.write(trailer)
    }

    private func takeSnapshot() async throws -> Data {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("talos-test-snapshot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("snapshot.db")
        let result = try await etcdctl(["snapshot", "save", file.path])
        guard result.status == 0 else { throw RPCError(code: .internalError, message: "etcdctl snapshot save: \(result.stderr)") }
        return try Data(contentsOf: file)
    }

    private func etcdctl(_ arguments: [String]) async throws -> ProcessRunner.Result {
        guard let endpoint = server.etcdEndpoint else {
            throw RPCError(code: .failedPrecondition, message: "etcd is not running on this node: it waits to be bootstrapped")
        }
        return try await EtcdInstance.etcdctl(offline: ["--endpoints", endpoint] + arguments)
    }

    // MARK: Recovery

    private func requireRecoveryRole(_ context: ServerContext) throws {
        let role = server.role(of: context.remotePeer) ?? "<none>"
        guard server.state.withLock({ $0.roleRules }).recoveryRoles.contains(role) else {
            throw RPCError(code: .permissionDenied, message: "not authorized")
        }
    }

    func etcdRecover(request: StreamingServerRequest<Common_Data>, context: ServerContext) async throws -> ServerResponse<Machine_EtcdRecoverResponse> {
        try requireRecoveryRole(context)
        let directory = server.workDirectory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // As machined: the upload replaces the snapshot file (O_TRUNC); a broken upload removes it.
        let file = directory.appendingPathComponent("snapshot.db")
        server.state.withLock { $0.recoverySnapshot = nil }
        guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
            throw RPCError(code: .internalError, message: "error creating etcd recovery snapshot \(file.path)")
        }
        let handle = try FileHandle(forWritingTo: file)
        if server.state.withLock({ $0.fault }) == .stallRecovery {
            try? await context.cancellation.cancelled
            try? FileManager.default.removeItem(at: file)
            throw CancellationError()
        }
        var received = 0
        do {
            defer { try? handle.close() }
            for try await message in request.messages {
                if case .cutRecoveryUpload(let limit) = server.state.withLock({ $0.fault }), received + message.bytes.count > limit {
                    throw RPCError(code: .unavailable, message: "connection reset while receiving the snapshot")
                }
                try handle.write(contentsOf: message.bytes)
                received += message.bytes.count
            }
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw error
        }
        server.state.withLock {
            $0.recoverySnapshot = file
            $0.recoveryUploads += 1
        }
        var response = Machine_EtcdRecoverResponse()
        var entry = Machine_EtcdRecover()
        entry.metadata.hostname = "talos-test-node"
        response.messages = [entry]
        return ServerResponse(message: response)
    }

    func bootstrap(request: ServerRequest<Machine_BootstrapRequest>, context: ServerContext) async throws -> ServerResponse<Machine_BootstrapResponse> {
        try requireRecoveryRole(context)
        if server.state.withLock({ $0.fault }) == .refuseBootstrap {
            throw RPCError(code: .failedPrecondition, message: "bootstrap is not available yet")
        }
        guard server.etcdEndpoint == nil else {
            throw RPCError(code: .alreadyExists, message: "etcd data directory is not empty")
        }
        let recovered: EtcdInstance
        if request.message.recoverEtcd {
            guard let snapshot = server.state.withLock({ $0.recoverySnapshot }) else {
                throw RPCError(code: .failedPrecondition, message: "error verifying snapshot: open /var/lib/etcd/recovery.snapshot: no such file or directory (upload one with EtcdRecover first)")
            }
            do {
                recovered = try await EtcdInstance.restoring(snapshot, skipHashCheck: request.message.recoverSkipHashCheck)
            } catch {
                throw RPCError(code: .internalError, message: "error recovering from the snapshot: \(error)")
            }
            try? FileManager.default.removeItem(at: snapshot)
        } else {
            recovered = try await EtcdInstance.start()
        }
        server.state.withLock { state in
            state.recoverySnapshot = nil
            state.recoveredEtcd = recovered
            state.etcdEndpoint = recovered.clientURL
        }
        server.announce(request.message.recoverEtcd ? "recovered etcd at \(recovered.clientURL)" : "bootstrapped etcd at \(recovered.clientURL)")
        var response = Machine_BootstrapResponse()
        var entry = Machine_Bootstrap()
        entry.metadata.hostname = "talos-test-node"
        response.messages = [entry]
        return ServerResponse(message: response)
    }
}
