import Foundation
import TestProcesses
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import KubernetesClient
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// An in-memory Kubernetes API server with real semantics (docs/design.md, Test environment),
/// over HTTP or HTTPS, for tests and benchmarks; kubectl accepts it. Faults on demand: failing
/// requests, latency, dropped watches, expired resourceVersions.
///
/// Run it for the duration of a closure with ``withRunning(_:_:)``, or until cancelled with
/// ``run(onListening:)``.
public final class KubernetesTestServer: Sendable {
    /// How clients must authenticate.
    public enum Authentication: Sendable, Equatable {
        case none
        /// `Authorization: Bearer <token>`.
        case token(String)
        /// A client certificate signed by the server's CA (needs TLS).
        case clientCertificate
    }

    public struct Options: Sendable {
        public var tls: Bool
        public var authentication: Authentication
        public var port: Int
        /// How often a watch that allows bookmarks gets one.
        public var bookmarkInterval: Duration
        /// Events kept per resource type for watches to resume from.
        public var watchHistory: Int
        /// Whether the TLS certificate names 127.0.0.1 besides `localhost`.
        public var loopbackIPInCertificate: Bool
        public var logger: Logger

        public init(tls: Bool = false, authentication: Authentication = .none, port: Int = 0, bookmarkInterval: Duration = .seconds(1), watchHistory: Int = 10_000, loopbackIPInCertificate: Bool = true, logger: Logger = Logger(label: "kubernetes-test-server")) {
            self.loopbackIPInCertificate = loopbackIPInCertificate
            self.tls = tls
            self.authentication = authentication
            self.port = port
            self.bookmarkInterval = bookmarkInterval
            self.watchHistory = watchHistory
            self.logger = logger
        }
    }

    public let options: Options
    /// The CA and certificates, when serving TLS.
    public let pki: TestPKI?
    let store: ObjectStore
    let faults = Faults()
    private let boundPort = Mutex<Int?>(nil)

    public init(options: Options = Options()) throws {
        if options.authentication == .clientCertificate && !options.tls {
            throw ConfigurationError(source: "kubernetes-test-server", field: "authentication", problem: "client certificates need TLS")
        }
        self.options = options
        self.pki = options.tls ? try TestPKI(loopbackIPInCertificate: options.loopbackIPInCertificate) : nil
        self.store = ObjectStore(logCapacity: options.watchHistory)
    }

    /// The port it listens on, once it does.
    public var port: Int {
        guard let port = boundPort.withLock({ $0 }) else { preconditionFailure("the test server is not listening yet") }
        return port
    }

    public var url: String { "\(options.tls ? "https" : "http")://127.0.0.1:\(port)" }

    /// Starts the server, runs `body` with it listening, then stops it.
    public static func withRunning<T: Sendable>(_ options: Options = Options(), _ body: (KubernetesTestServer) async throws -> T) async throws -> T {
        let server = try KubernetesTestServer(options: options)
        return try await whileServing("kubernetes-test-server", { listening in
            try await server.run { _ in listening() }
        }) {
            try await body(server)
        }
    }

    /// Runs `body` with a running server and a client for it (with `clientLogger`); the client is
    /// shut down afterwards, whether `body` returned or threw.
    public static func withRunningClient<T: Sendable>(
        _ options: Options = Options(), clientLogger: Logger = Logger(label: "kubernetes-client"),
        _ body: (KubernetesTestServer, KubernetesClient) async throws -> T
    ) async throws -> T {
        try await withRunning(options) { server in
            let client = try KubernetesClient(configuration: server.clientConfiguration(), logger: clientLogger)
            do {
                let result = try await body(server, client)
                try await client.shutdown()
                return result
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
    }

    /// Serves until the calling task is cancelled; open watches are ended first, so shutdown
    /// does not wait for them.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let responder = APIResponder(
            store: store, faults: faults, authentication: options.authentication,
            address: { [self] in "127.0.0.1:\(self.boundPort.withLock { $0 } ?? 0)" },
            bookmarkInterval: options.bookmarkInterval, logger: options.logger)
        let server: HTTPServerBuilder = try pki.map { pki in
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(pki.serverCertificatePEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(pki.serverKeyPEM.utf8), format: .pem)))
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pki.caCertificatePEM.utf8)))
            tls.certificateVerification = options.authentication == .clientCertificate ? .noHostnameVerification : .none
            return try .tls(.http1(), tlsConfiguration: tls)
        } ?? .http1()
        let app = Application(
            responder: responder, server: server,
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: options.port)),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? 0
                self.boundPort.withLock { $0 = port }
                onListening(port)
            },
            logger: options.logger)
        let store = self.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            group.addTask {
                // Sleeps until cancelled, then ends the watches that would hold shutdown up.
                try? await Task.sleep(for: .seconds(1_000_000_000))
                await store.dropWatches()
            }
            try await group.next()
            group.cancelAll()
        }
    }

    // MARK: Clients

    /// A configuration that reaches this server as its administrator.
    public func clientConfiguration() -> KubernetesConfiguration {
        var configuration = KubernetesConfiguration(server: url, namespace: "default", queriesPerSecond: 1000, burst: 1000, source: "kubernetes-test-server")
        if let pki {
            configuration.certificateAuthorityPEM = Array(pki.caCertificatePEM.utf8)
            if options.authentication == .clientCertificate {
                configuration.clientCertificatePEM = Array(pki.clientCertificatePEM.utf8)
                configuration.clientKeyPEM = Array(pki.clientKeyPEM.utf8)
            }
        }
        if case .token(let token) = options.authentication { configuration.credentials = .token(token) }
        return configuration
    }

    /// A kubeconfig for kubectl and other clients (context `test`, namespace `default`).
    public func kubeconfig() -> String {
        var cluster = "    server: \(url)\n"
        if let pki { cluster += "    certificate-authority-data: \(Data(pki.caCertificatePEM.utf8).base64EncodedString())\n" }
        var user = "  user: {}\n"
        switch options.authentication {
        case .none: break
        case .token(let token): user = "  user:\n    token: \(token)\n"
        case .clientCertificate:
            if let pki {
                user = "  user:\n    client-certificate-data: \(Data(pki.clientCertificatePEM.utf8).base64EncodedString())\n"
                    + "    client-key-data: \(Data(pki.clientKeyPEM.utf8).base64EncodedString())\n"
            }
        }
        return """
            apiVersion: v1
            kind: Config
            clusters:
            - name: test
              cluster:
            \(cluster)users:
            - name: test
            \(user)contexts:
            - name: test
              context:
                cluster: test
                user: test
                namespace: default
            current-context: test

            """
    }

    public func writeKubeconfig(to path: String) throws {
        try Data(kubeconfig().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    // MARK: Faults

    /// Answers the next `count` requests (matching `method` and a path fragment, when given;
    /// a fragment ending in `$` must end the path)
    /// with `code` (500, 429, 409 Conflict as a lost optimistic-concurrency race, ...),
    /// optionally with a `Retry-After`.
    public func failNextRequests(_ count: Int, code: Int, method: String? = nil, pathContains: String? = nil, retryAfterSeconds: Int? = nil) async {
        await faults.failNext(count, code: code, method: method, pathContains: pathContains, retryAfterSeconds: retryAfterSeconds)
    }

    /// Delays every request by `latency`.
    public func setLatency(_ latency: Duration) async {
        await faults.setLatency(latency)
    }

    /// Delays requests whose path contains `pathContains` (ends with it, when it ends in `$`;
    /// of `method`, when given) by `delay`
    /// on top of any latency; `.zero` removes the delay.
    public func delayRequests(_ delay: Duration, method: String? = nil, pathContains: String) async {
        await faults.delay(delay, method: method, pathContains: pathContains)
    }

    /// Holds requests whose path contains `pathContains` (ends with it, when it ends in `$`; of
    /// `method`, when given) unanswered
    /// until ``releaseRequests(method:pathContains:)``.
    public func holdRequests(method: String? = nil, pathContains: String) async {
        await faults.hold(method: method, pathContains: pathContains)
    }

    /// Answers the requests ``holdRequests(method:pathContains:)`` held, and those after them.
    public func releaseRequests(method: String? = nil, pathContains: String) async {
        await faults.release(method: method, pathContains: pathContains)
    }

    /// Ends every open watch abruptly, as a dropped connection would.
    public func dropWatches() async {
        await store.dropWatches()
    }

    /// Forgets watch history: a watch from any older resourceVersion gets 410 Gone.
    public func expireResourceVersions() async {
        await store.expireResourceVersions()
    }

    public var openWatchCount: Int {
        get async { await store.openWatchCount }
    }

    /// Watch requests answered since the server started.
    public var watchesStarted: Int {
        get async { await store.watchesStarted }
    }

    public var currentResourceVersion: String {
        get async { await store.currentResourceVersion }
    }
}
