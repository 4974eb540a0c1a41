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
import TestSupport
import X509

/// A Talos node for tests: `machine.MachineService` (EtcdSnapshot, EtcdStatus, Version) over
/// gRPC with mutual TLS and Ed25519 certificates like Talos', the Talos role taken from the
/// client certificate's Organization (`os:reader` may not take snapshots, as in Talos), and
/// snapshots served from a real etcd. Faults on demand: fail mid-stream, corrupt one byte, stall.
public final class TalosTestServer: Sendable {
    public enum Fault: Sendable, Equatable {
        case none
        /// Ends the stream with an error after the first chunk.
        case failMidStream
        /// Flips one bit in the middle of the snapshot.
        case corruptByte
        /// Sends the first chunk, then nothing until the call is cancelled.
        case stall
    }

    public static let snapshotRoles: Set<String> = ["os:admin", "os:etcd:backup"]

    public let pki: TalosPKI
    public let etcdEndpoint: String
    let state = Mutex(State())

    struct State {
        var fault = Fault.none
        var roles: [String: String] = [:]
        var cancelledSnapshots = 0
        var port = 0
    }

    public init(etcdEndpoint: String) throws {
        self.etcdEndpoint = etcdEndpoint
        self.pki = try TalosPKI()
    }

    public var port: Int { state.withLock { $0.port } }
    public var endpoint: String { "127.0.0.1:\(port)" }

    public func setFault(_ fault: Fault) { state.withLock { $0.fault = fault } }

    /// Snapshot calls whose client went away before the end.
    public var cancelledSnapshots: Int { state.withLock { $0.cancelledSnapshots } }

    /// A talosconfig for `role` pointing at this server (and `extraEndpoints` first, when given).
    public func talosconfig(role: String = "os:etcd:backup", endpointsBefore: [String] = [], nodes: [String] = [], notAfter: Date = Date() + 86_400) throws -> String {
        try pki.talosconfig(role: role, endpoints: endpointsBefore + [endpoint], nodes: nodes, notAfter: notAfter)
    }

    /// Runs `body` while the server listens on a free 127.0.0.1 port.
    public static func withRunning<T: Sendable>(etcdEndpoint: String, _ body: (TalosTestServer) async throws -> T) async throws -> T {
        let server = try TalosTestServer(etcdEndpoint: etcdEndpoint)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            let (listening, announce) = AsyncStream<Void>.makeStream()
            group.addTask { try await server.run { announce.finish() } }
            for await _ in listening {}
            do {
                let result = try await body(server)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
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
            address: .ipv4(host: "127.0.0.1", port: 0),
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
            try await group.next()
        }
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

private struct MachineService: Machine_MachineService.SimpleServiceProtocol {
    let server: TalosTestServer

    func etcdSnapshot(request: Machine_EtcdSnapshotRequest, response: RPCWriter<Common_Data>, context: ServerContext) async throws {
        let role = server.role(of: context.remotePeer) ?? "<none>"
        guard TalosTestServer.snapshotRoles.contains(role) else {
            throw RPCError(code: .permissionDenied, message: "not authorized")
        }
        var snapshot = try await takeSnapshot()
        let fault = server.state.withLock { $0.fault }
        if fault == .corruptByte { snapshot[snapshot.count / 2] ^= 0x01 }
        let chunk = 256 * 1024
        var offset = 0
        do {
            while offset < snapshot.count {
                let end = min(offset + chunk, snapshot.count)
                var message = Common_Data()
                message.bytes = snapshot[offset..<end]
                try await response.write(message)
                offset = end
                if fault == .failMidStream { throw RPCError(code: .unavailable, message: "etcd snapshot stream failed") }
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

    func etcdStatus(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Machine_EtcdStatusResponse {
        guard server.role(of: context.remotePeer) != nil else { throw RPCError(code: .permissionDenied, message: "not authorized") }
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

    func version(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Machine_VersionResponse {
        var version = Machine_Version()
        version.metadata.hostname = "talos-test-node"
        version.version.tag = "v1.9.0-test"
        version.version.os = "linux"
        version.version.arch = "amd64"
        var response = Machine_VersionResponse()
        response.messages = [version]
        return response
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
        var environment = ProcessInfo.processInfo.environment
        environment["ETCDCTL_API"] = "3"
        return try await ProcessRunner.run("/usr/bin/etcdctl", ["--endpoints", server.etcdEndpoint] + arguments, environment: environment)
    }
}
