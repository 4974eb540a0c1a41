@_exported import ConfigurationFiles  // its ConfigurationError is part of this module's API
import Foundation

/// Where the API server is and how to authenticate to it: the result of reading a kubeconfig
/// or the in-cluster service account, and the only input ``KubernetesClient`` needs.
public struct KubernetesConfiguration: Sendable {
    /// Base URL of the API server, e.g. `https://127.0.0.1:6443`.
    public var server: String
    /// PEM CA bundle to trust; nil trusts the system roots.
    public var certificateAuthorityPEM: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    /// Name to verify the server certificate against instead of the URL's host.
    public var tlsServerName: String?
    /// PEM client certificate and key for mutual TLS.
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    public var credentials: Credentials
    /// Namespace of the context (or the service account's), `default` when unset.
    public var namespace: String
    /// Client-side rate limit: sustained requests per second, and burst.
    public var queriesPerSecond: Double
    public var burst: Int
    /// Timeout of one request (not of a watch's stream).
    public var requestTimeout: Duration
    /// How long to keep trying to establish a connection (TCP and TLS) before a request fails.
    public var connectTimeout: Duration
    /// Where it came from, for error messages: `kubeconfig /root/.kube/config, context kind`.
    public var source: String

    public init(
        server: String, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
        tlsServerName: String? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil,
        credentials: Credentials = .none, namespace: String = "default", queriesPerSecond: Double = 50,
        burst: Int = 100, requestTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10),
        source: String = "explicit configuration"
    ) {
        self.connectTimeout = connectTimeout
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.tlsServerName = tlsServerName
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.credentials = credentials
        self.namespace = namespace
        self.queriesPerSecond = queriesPerSecond
        self.burst = burst
        self.requestTimeout = requestTimeout
        self.source = source
    }

    /// How requests prove who they are, beyond a client certificate.
    public enum Credentials: Sendable {
        case none
        /// A fixed bearer token.
        case token(String)
        /// A bearer token read from a file and re-read when the file changes, the way
        /// in-cluster service-account tokens rotate.
        case tokenFile(String)
        /// A `client.authentication.k8s.io/v1` exec plugin (EKS, GKE, AKS).
        case exec(ExecCredentialPlugin)
    }

    /// The kubeconfig file `kubeconfig` when given; else the in-cluster configuration if running
    /// in a pod; else the kubeconfig ($KUBECONFIG, ~/.kube/config). `context` picks a context.
    public static func load(kubeconfig path: String? = nil, kubeconfigContext context: String? = nil) throws -> KubernetesConfiguration {
        if let path { return try Kubeconfig.load(paths: [path], context: context) }
        let environment = ProcessInfo.processInfo.environment
        if context == nil, environment["KUBECONFIG"] == nil, InClusterConfiguration.isAvailable(environment: environment) {
            return try InClusterConfiguration.load(environment: environment)
        }
        return try Kubeconfig.load(context: context, environment: environment)
    }
}

/// An exec credential plugin as a kubeconfig `users[].user.exec` describes it.
public struct ExecCredentialPlugin: Sendable, Equatable {
    public var apiVersion: String
    public var command: String
    public var arguments: [String]
    public var environment: [String: String]
    /// Directory of the kubeconfig that named the plugin: a relative command is found there.
    public var baseDirectory: String

    public init(apiVersion: String, command: String, arguments: [String] = [], environment: [String: String] = [:], baseDirectory: String) {
        self.apiVersion = apiVersion
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.baseDirectory = baseDirectory
    }
}

