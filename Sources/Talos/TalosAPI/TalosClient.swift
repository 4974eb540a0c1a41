import ClientTLS
import ConfigurationFiles
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import Synchronization

/// The Talos API over gRPC with mutual TLS, for the calls the operator makes.
///
/// Talos issues Ed25519 certificates; BoringSSL (NIOSSL) offers no Ed25519 signatures unless
/// asked, and grpc-swift-nio-transport's `.tls` settings cannot ask, so the client installs its
/// own `NIOSSLClientHandler` through the transport's `customSecure` mode (ALPN `h2`, which
/// Talos' Go gRPC server requires). It trusts only the talosconfig's CA and checks the server's
/// certificate against the endpoint's name or IP address.
public struct TalosClient: Sendable {
    public let context: TalosContext
    /// Per call: connecting and the first response must happen within this.
    public var timeout: Duration

    public init(context: TalosContext, timeout: Duration = .seconds(30)) {
        self.context = context
        self.timeout = timeout
    }

    /// The HTTP/2 receive window. It bounds how far Talos may run ahead of the consumer (an
    /// upload slower than the snapshot stream): the snapshot call reads no further while its
    /// consumer has 8 reads waiting, and flow control stops the node at this window (tested:
    /// a consumer that stops holds the node under 16 MiB into a 64 MiB stream; without the
    /// pause in reading it ran the whole stream ahead). 1 MiB: at 256 KiB, the
    /// WINDOW_UPDATE frames it took cost throughput (190.8 against 250.5 MiB/s from a grpc-go
    /// node, scripts/benchmark-talos); 4 MiB added little (264.6) and raised peak memory.
    public static let receiveWindow = 1024 * 1024

    /// The TLS configuration of every connection.
    func tlsConfiguration() throws -> TLSConfiguration {
        var tls = try ClientTLS.configuration(
            source: "talosconfig", trust: PEMField(field: "ca", pem: Array(context.caPEM.utf8)),
            identity: (PEMField(field: "crt", pem: Array(context.certificatePEM.utf8)), PEMField(field: "key", pem: Array(context.keyPEM.utf8))))
        tls.applicationProtocols = ["h2"]
        let algorithms: [SignatureAlgorithm] = [
            .ed25519, .ecdsaSecp256R1Sha256, .ecdsaSecp384R1Sha384, .rsaPssRsaeSha256, .rsaPssRsaeSha384, .rsaPkcs1Sha256,
        ]
        tls.signingSignatureAlgorithms = algorithms
        tls.verifySignatureAlgorithms = algorithms
        tls.minimumTLSVersion = .tlsv12
        return tls
    }

    /// Runs `body` with a MachineService client connected to `endpoint`.
    public func withMachineService<Result: Sendable>(
        endpoint: TalosEndpoint,
        _ body: (Machine_MachineService.Client<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let sslContext = try NIOSSLContext(configuration: tlsConfiguration())
        let isAddress = Self.isIPAddress(endpoint.host)
        let serverHostname = isAddress ? nil : endpoint.host
        let target: any ResolvableTarget = if endpoint.host.contains(":") {
            .ipv6(address: endpoint.host, port: endpoint.port)
        } else if isAddress {
            .ipv4(address: endpoint.host, port: endpoint.port)
        } else {
            .dns(host: endpoint.host, port: endpoint.port)
        }
        let transport = try HTTP2ClientTransport.Posix(
            target: target,
            transportSecurity: .customSecure,
            config: .defaults { config in
                config.connection.maxIdleTime = nil
                config.http2.targetWindowSize = Self.receiveWindow
                config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // The transport has built the HTTP/2 pipeline; TLS goes in front of it.
                        let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname)
                        try channel.pipeline.syncOperations.addHandler(handler, position: .first)
                    }
                }
            })
        return try await withGRPCClient(transport: transport) { client in
            try await body(Machine_MachineService.Client(wrapping: client))
        }
    }

    /// Metadata that routes a call through an endpoint to `node` (none: the endpoint itself).
    public static func metadata(node: String?) -> Metadata {
        var metadata = Metadata()
        if let node { metadata.addString(node, forKey: "node") }
        return metadata
    }

    /// The etcd member status of `node`, through `endpoint`. Talos' refusals are
    /// ``TalosAPIError``.
    public func etcdStatus(endpoint: TalosEndpoint, node: String?) async throws -> Machine_EtcdMemberStatus {
        try await TalosAPIError.translating { try await rpcEtcdStatus(endpoint: endpoint, node: node) }
    }

    func rpcEtcdStatus(endpoint: TalosEndpoint, node: String?) async throws -> Machine_EtcdMemberStatus {
        let status = try await firstMessage(of: "EtcdStatus", endpoint: endpoint, node: node, error: \.metadata.error) { machine, metadata, options in
            try await machine.etcdStatus(.init(), metadata: metadata, options: options).messages
        }
        return status.memberStatus
    }

    /// A unary call to `node` through `endpoint` with this client's timeout, answering with a
    /// list of per-node messages (Talos' shape): the first one, or the error its metadata
    /// carries (apid reports a node it cannot reach that way) as Unavailable.
    func firstMessage<Message: Sendable>(
        of method: String, endpoint: TalosEndpoint, node: String?, error: KeyPath<Message, String> & Sendable,
        _ call: @escaping @Sendable (Machine_MachineService.Client<HTTP2ClientTransport.Posix>, Metadata, CallOptions) async throws -> [Message]
    ) async throws -> Message {
        var options = CallOptions.defaults
        options.timeout = timeout
        let callOptions = options
        let messages = try await withMachineService(endpoint: endpoint) { machine in
            try await call(machine, Self.metadata(node: node), callOptions)
        }
        guard let message = messages.first else {
            throw RPCError(code: .internalError, message: "\(method) answered without a message")
        }
        let problem = message[keyPath: error]
        if !problem.isEmpty {
            throw RPCError(code: .unavailable, message: "node \(node ?? endpoint.description): \(problem)")
        }
        return message
    }

    /// Streams an etcd snapshot of `node` through `endpoint` into `consume`, verified on the
    /// fly (see ``VerifiedSnapshotStream``). The RPC lives as long as `consume` runs;
    /// cancelling the caller cancels the RPC. Talos' refusals and broken streams are
    /// ``TalosAPIError``.
    public func etcdSnapshot<Result: Sendable>(
        endpoint: TalosEndpoint, node: String?,
        _ consume: @escaping @Sendable (VerifiedSnapshotStream<SnapshotChunks>) async throws -> Result
    ) async throws -> Result {
        try await TalosAPIError.translating { try await rpcEtcdSnapshot(endpoint: endpoint, node: node, consume) }
    }

    func rpcEtcdSnapshot<Result: Sendable>(
        endpoint: TalosEndpoint, node: String?,
        _ consume: @escaping @Sendable (VerifiedSnapshotStream<SnapshotChunks>) async throws -> Result
    ) async throws -> Result {
        try await EtcdSnapshotCall(client: self).run(endpoint: endpoint, node: node) { chunks in
            try await consume(VerifiedSnapshotStream(chunks))
        }
    }

    /// Takes a verified snapshot, trying each node (or, without nodes, each endpoint itself)
    /// through each endpoint in talosconfig order, and moving on only when a target cannot be
    /// reached (connection refused, TLS failure, unavailable) before the first snapshot byte.
    /// Before streaming, EtcdStatus of the chosen node gives db size, raft index and leader,
    /// handed to `consume` with the stream. EtcdStatus is best effort: older Talos releases
    /// allow it for `os:admin` only (and a stand-in may not serve it), so PermissionDenied or
    /// Unimplemented means the snapshot is taken without it. Any other failure (permission
    /// denied on the snapshot, a corrupt snapshot, a stream broken after data flowed) is thrown
    /// as it is, Talos' own as ``TalosAPIError``.
    public func snapshot<Result: Sendable>(
        _ consume: @escaping @Sendable (SnapshotSource, VerifiedSnapshotStream<SnapshotChunks>) async throws -> Result
    ) async throws -> Result {
        try await TalosAPIError.translating { try await snapshotWithFailover(consume) }
    }

    private func snapshotWithFailover<Result: Sendable>(
        _ consume: @escaping @Sendable (SnapshotSource, VerifiedSnapshotStream<SnapshotChunks>) async throws -> Result
    ) async throws -> Result {
        let targets: [(TalosEndpoint, String?)] = context.nodes.isEmpty
            ? context.endpoints.map { ($0, nil) }
            : context.nodes.flatMap { node in context.endpoints.map { ($0, node) } }
        var failures: [(target: String, error: String)] = []
        for (endpoint, node) in targets {
            let described = node.map { "node \($0) via \(endpoint)" } ?? "endpoint \(endpoint)"
            let started = Mutex(false)
            do {
                let status = try await optionalEtcdStatus(endpoint: endpoint, node: node)
                let source = SnapshotSource(endpoint: endpoint, node: node ?? endpoint.host, status: status)
                return try await rpcEtcdSnapshot(endpoint: endpoint, node: node) { stream in
                    try await consume(source, stream.onFirstChunk { started.withLock { $0 = true } })
                }
            } catch let error as RPCError where Self.isUnreachable(error) && !started.withLock({ $0 }) {
                failures.append((described, error.message))
            }
        }
        throw TalosUnreachable(failures: failures)
    }

    /// EtcdStatus where the talosconfig's role may call it; nil where Talos refuses it as not
    /// allowed or not implemented. Unreachable targets still throw (for failover).
    func optionalEtcdStatus(endpoint: TalosEndpoint, node: String?) async throws -> Machine_EtcdMemberStatus? {
        do {
            return try await rpcEtcdStatus(endpoint: endpoint, node: node)
        } catch let error as RPCError where [.permissionDenied, .unimplemented].contains(error.code) {
            return nil
        }
    }

    /// Errors that mean "this target cannot be reached", worth trying the next one for.
    static func isUnreachable(_ error: RPCError) -> Bool {
        [.unavailable, .deadlineExceeded].contains(error.code)
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

/// Which node served a snapshot, and its etcd status just before.
public struct SnapshotSource: Sendable {
    public var endpoint: TalosEndpoint
    /// The node targeted (the endpoint's host when the talosconfig names no nodes).
    public var node: String
    /// Nil when the node's Talos does not let this talosconfig's role call EtcdStatus.
    public var status: Machine_EtcdMemberStatus?
}

/// A call the Talos API refused or broke off, with gRPC's status code and message: what callers
/// branch on (``code``) without importing gRPC.
public struct TalosAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The gRPC status codes callers act on; the rest are ``other``.
    public enum Code: Sendable, Equatable {
        /// The talosconfig's role may not make this call.
        case permissionDenied
        /// The client certificate was not accepted.
        case unauthenticated
        /// The node, or the path to it, is down (also: a stream broken mid-way).
        case unavailable
        case deadlineExceeded
        /// This Talos release does not serve the call.
        case unimplemented
        case other
    }

    public var code: Code
    /// gRPC's name of the code ("permissionDenied").
    public var grpcCode: String
    public var message: String

    public init(code: Code, grpcCode: String, message: String) {
        self.code = code
        self.grpcCode = grpcCode
        self.message = message
    }

    init(_ error: RPCError) {
        let code: Code = switch error.code {
        case .permissionDenied: .permissionDenied
        case .unauthenticated: .unauthenticated
        case .unavailable: .unavailable
        case .deadlineExceeded: .deadlineExceeded
        case .unimplemented: .unimplemented
        default: .other
        }
        self.init(code: code, grpcCode: "\(error.code)", message: error.message)
    }

    public var description: String { "\(grpcCode): \(message)" }

    /// Runs `body`, throwing its gRPC errors as ``TalosAPIError``; others pass as they are.
    static func translating<R>(_ body: () async throws -> R) async throws -> R {
        do {
            return try await body()
        } catch let error as RPCError {
            throw TalosAPIError(error)
        }
    }
}

/// No endpoint or node could be reached; says what each attempt ran into.
public struct TalosUnreachable: Error, Sendable, CustomStringConvertible {
    /// Each target tried ("node 10.5.0.2 via 10.5.0.1:50000") and why it could not be reached.
    public var failures: [(target: String, error: String)]
    /// What was asked of the endpoints.
    public var task: String

    public init(failures: [(target: String, error: String)], task: String = "serve the snapshot") {
        self.failures = failures
        self.task = task
    }

    /// Every target with its connection error: for the person running the CLI and the
    /// operator's log.
    public var description: String {
        "no Talos endpoint could \(task): " + failures.map { "\($0.target): \($0.error)" }.joined(separator: "; ")
    }

    /// Every target, each only "unreachable": what a status may say without telling a tenant
    /// which ports of which hosts are open (a refused connection, a timeout and a TLS failure
    /// read the same).
    public var summary: String {
        "no Talos endpoint could \(task): " + failures.map { "\($0.target): unreachable" }.joined(separator: "; ")
    }
}

/// The snapshot bytes of an EtcdSnapshot response as they arrive, one chunk per socket read
/// (``EtcdSnapshotCall``): each chunk holds the bytes of every `common.Data` message (1 KiB each
/// from Talos) that the read completed, so nothing is held back from a stream that stalls. A
/// message whose metadata carries an error (Talos' proxy reports upstream failures that way)
/// ends the stream with that error rather than being taken as data; so does a gRPC status
/// other than OK in the trailers, as ``RPCError``.
public struct SnapshotChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    typealias Chunks = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, SnapshotResponseHandler.Demand>
    let chunks: Chunks

    public struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: Chunks.AsyncIterator

        public mutating func next() async throws -> ByteBuffer? { try await chunks.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: chunks.makeAsyncIterator()) }
}
