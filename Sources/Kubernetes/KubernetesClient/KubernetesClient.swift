import ClientTLS
import ConfigurationFiles
import AsyncHTTPClient
import Waiting
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// A REST client for the Kubernetes API: typed CRUD, merge patches, the `/status`
/// subresource, deletes with preconditions, paginated lists and streamed watches, for core and
/// custom groups. Requests are rate limited on the client side; idempotent ones (GET, PUT,
/// DELETE) are retried on 429 and 5xx with backoff honouring `Retry-After`, others on 429 only
/// (the server has not acted on them).
public final class KubernetesClient: KubernetesAPI {
    public let configuration: KubernetesConfiguration
    private let http: HTTPClient
    private let tls: TLSConfiguration?
    private let credentials: CredentialSource
    private let rateLimiter: RateLimiter
    private let logger: Logger
    /// The server URL requests go to: with `tls-server-name`, its host is that name (so the
    /// certificate is checked against it) and DNS for it is overridden to the real host.
    private let baseURL: String
    /// Retries after the first attempt, for retryable failures.
    public let maxRetries: Int

    public init(configuration: KubernetesConfiguration, logger: Logger = Logger(label: "kubernetes-client"), maxRetries: Int = 5) throws {
        self.configuration = configuration
        self.logger = logger
        self.maxRetries = maxRetries
        self.credentials = CredentialSource(configuration.credentials, server: configuration.server, pluginTimeout: configuration.requestTimeout)
        self.rateLimiter = RateLimiter(rate: configuration.queriesPerSecond, burst: configuration.burst)
        self.tls = try Self.tlsConfiguration(configuration)
        var httpConfiguration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: .init(configuration.connectTimeout), read: nil))
        var baseURL = configuration.server
        if let serverName = configuration.tlsServerName, tls != nil,
           var components = URLComponents(string: configuration.server), let host = components.host {
            components.host = serverName
            baseURL = components.string ?? configuration.server
            httpConfiguration.dnsOverride = [serverName: host]
        }
        if baseURL.hasSuffix("/") { baseURL.removeLast() }
        self.baseURL = baseURL
        httpConfiguration.httpVersion = .http1Only
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfiguration)
    }

    /// Closes connections; call once when done.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    private static func tlsConfiguration(_ configuration: KubernetesConfiguration) throws -> TLSConfiguration? {
        guard configuration.server.lowercased().hasPrefix("https://") else { return nil }
        var identity: (PEMField, PEMField)?
        if let certificate = configuration.clientCertificatePEM, let key = configuration.clientKeyPEM {
            identity = (clientCertificate(certificate), clientKey(key))
        }
        return try ClientTLS.configuration(
            source: configuration.source, trust: configuration.certificateAuthorityPEM.map { PEMField(field: "certificate-authority", pem: $0) },
            identity: identity, insecureSkipVerify: configuration.insecureSkipTLSVerify)
    }

    private static func clientCertificate(_ pem: [UInt8]) -> PEMField { PEMField(field: "client-certificate", pem: pem) }
    private static func clientKey(_ pem: [UInt8]) -> PEMField { PEMField(field: "client-key", pem: pem) }

    // MARK: Typed operations (KubernetesAPI)

    public func get<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try decode(type, try await request(.GET, resource.path(namespace: namespace, name: name)))
    }

    public func list<T: Decodable & Sendable>(
        _ type: T.Type, _ resource: ResourceType, namespace: String?, options: ListOptions
    ) async throws -> ObjectList<T> {
        try decode(ObjectList<T>.self, try await request(.GET, resource.path(namespace: namespace), query: options.query))
    }

    public func create<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?) async throws -> T {
        try decode(T.self, try await request(.POST, resource.path(namespace: namespace), body: try JSONEncoder().encode(object)))
    }

    public func update<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try decode(T.self, try await request(
            .PUT, resource.path(namespace: namespace, name: name), body: try JSONEncoder().encode(object)))
    }

    public func updateStatus<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try decode(T.self, try await request(
            .PUT, resource.path(namespace: namespace, name: name, subresource: "status"), body: try JSONEncoder().encode(object)))
    }

    public func patch<T: Decodable>(
        _ type: T.Type, _ resource: ResourceType, namespace: String?, name: String, mergePatch: JSONValue, subresource: String?
    ) async throws -> T {
        try decode(type, try await request(
            .PATCH, resource.path(namespace: namespace, name: name, subresource: subresource),
            body: try JSONEncoder().encode(mergePatch), contentType: "application/merge-patch+json"))
    }

    public func delete(_ resource: ResourceType, namespace: String?, name: String, options: DeleteOptions) async throws {
        _ = try await request(.DELETE, resource.path(namespace: namespace, name: name), body: try options.json().map { try JSONEncoder().encode($0) })
    }

    public func watch<T: Decodable & Sendable>(
        _ type: T.Type, _ resource: ResourceType, namespace: String?, options: WatchOptions
    ) async throws -> WatchStream<T> {
        let response = try await send(.GET, resource.path(namespace: namespace), query: options.query, body: nil,
                                      contentType: nil, idempotent: true, streaming: true)
        guard case .streaming(let body) = response else {
            throw KubernetesConnectionError(request: "watch \(resource)", underlying: "the answer was not a stream")
        }
        return WatchStream(body: body)
    }

    // MARK: Raw requests

    /// Sends a request and returns the body of a 2xx answer; a Status error otherwise.
    public func request(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil,
        contentType: String = "application/json"
    ) async throws -> Data {
        let idempotent = [.GET, .PUT, .DELETE, .HEAD].contains(method)
        let response = try await send(method, path, query: query, body: body, contentType: contentType, idempotent: idempotent, streaming: false)
        guard case .complete(let data) = response else { return Data() }
        return data
    }

    private enum Answer {
        case complete(Data)
        case streaming(HTTPClientResponse.Body)
    }

    private func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], body: Data?, contentType: String?,
        idempotent: Bool, streaming: Bool
    ) async throws -> Answer {
        let description = "\(method.rawValue) \(path)"
        var attempt = 0
        var refreshedCredentials = false
        while true {
            try await rateLimiter.acquire()
            var request = HTTPClientRequest(url: baseURL + path + Self.queryString(query))
            request.method = method
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: "talos-etcd-backup")
            if let body {
                request.body = .bytes(ByteBuffer(bytes: body))
                request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            }
            let current = try await credentials.current()
            if let token = current.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            if let certificate = current.clientCertificatePEM, let key = current.clientKeyPEM, var tls {
                try ClientTLS.install(certificate: Self.clientCertificate(certificate), key: Self.clientKey(key), into: &tls, source: configuration.source)
                request.tlsConfiguration = tls
            }

            let failure: KubernetesError
            do {
                // The deadline covers the whole exchange: AsyncHTTPClient's own ends with the
                // response head, so the body is read under the time that is left.
                let deadline = ContinuousClock.now + configuration.requestTimeout
                let response = try await http.execute(request, deadline: .now() + .init(configuration.requestTimeout))
                let code = Int(response.status.code)
                if (200..<300).contains(code) {
                    if streaming { return .streaming(response.body) }
                    let buffer = try await withDeadline(deadline - .now, "reading the response to \(description)") {
                        try await response.body.collect(upTo: 256 * 1024 * 1024)
                    }
                    return .complete(Data(buffer.readableBytesView))
                }
                let buffer = try await withDeadline(deadline - .now, "reading the response to \(description)") {
                    try await response.body.collect(upTo: 4 * 1024 * 1024)
                }
                failure = Self.error(code: code, body: Data(buffer.readableBytesView), request: description,
                                     retryAfter: response.headers.first(name: "Retry-After"))
            } catch let error as KubernetesError {
                throw error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                // Connection refused, reset, timed out: retry only what is safe to repeat.
                guard idempotent, attempt < maxRetries else {
                    throw KubernetesConnectionError(request: description, underlying: "\(error)")
                }
                attempt += 1
                logger.debug("retrying after connection error", metadata: ["request": "\(description)", "error": "\(error)"])
                try await Task.sleep(for: Self.retryBackoff.delay(retry: attempt - 1))
                continue
            }

            if failure.isUnauthorized, !refreshedCredentials, case .exec = configuration.credentials {
                refreshedCredentials = true
                await credentials.invalidate()
                continue
            }
            let retryable = failure.isTooManyRequests || (idempotent && [500, 502, 503, 504].contains(failure.code))
            guard retryable, attempt < maxRetries else { throw failure }
            attempt += 1
            let delay = failure.retryAfterSeconds.map { Duration.seconds(min($0, 60)) } ?? Self.retryBackoff.delay(retry: attempt - 1)
            logger.debug("retrying", metadata: ["request": "\(description)", "code": "\(failure.code)", "attempt": "\(attempt)"])
            try await Task.sleep(for: delay)
        }
    }

    /// 100 ms doubling, capped at 5 s.
    static let retryBackoff = Backoff(base: .milliseconds(100), cap: .seconds(5))

    static func error(code: Int, body: Data, request: String, retryAfter: String?) -> KubernetesError {
        let status = try? JSONDecoder().decode(Status.self, from: body)
        let decoded = status?.kind == "Status" || status?.reason != nil ? status : nil
        let fallback = Status(message: String(decoding: body.prefix(512), as: UTF8.self), reason: nil, code: code)
        return KubernetesError(code: code, status: decoded ?? fallback, request: request,
                               retryAfterSeconds: retryAfter.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) })
    }

    static func queryString(_ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return "" }
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+,;")
        return "?" + query.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }.joined(separator: "&")
    }

    private func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }
}

/// Options of a list request.
public struct ListOptions: Sendable {
    public var labelSelector: String?
    public var fieldSelector: String?
    public var limit: Int?
    public var continueToken: String?
    public var resourceVersion: String?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil, continueToken: String? = nil, resourceVersion: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continueToken = continueToken
        self.resourceVersion = resourceVersion
    }

    var query: [(String, String)] {
        var query: [(String, String)] = []
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        if let limit { query.append(("limit", String(limit))) }
        if let continueToken { query.append(("continue", continueToken)) }
        if let resourceVersion { query.append(("resourceVersion", resourceVersion)) }
        return query
    }
}

/// Options of a watch request.
public struct WatchOptions: Sendable {
    public var labelSelector: String?
    public var fieldSelector: String?
    /// Start after this version (from a list); nil starts "now" with synthetic ADDED events.
    public var resourceVersion: String?
    public var allowWatchBookmarks: Bool
    /// Server-side duration of the watch; the stream ends cleanly after it.
    public var timeoutSeconds: Int?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, resourceVersion: String? = nil, allowWatchBookmarks: Bool = true, timeoutSeconds: Int? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.resourceVersion = resourceVersion
        self.allowWatchBookmarks = allowWatchBookmarks
        self.timeoutSeconds = timeoutSeconds
    }

    var query: [(String, String)] {
        var query: [(String, String)] = [("watch", "true")]
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        if let resourceVersion { query.append(("resourceVersion", resourceVersion)) }
        if allowWatchBookmarks { query.append(("allowWatchBookmarks", "true")) }
        if let timeoutSeconds { query.append(("timeoutSeconds", String(timeoutSeconds))) }
        return query
    }
}

/// Options of a delete request (`metav1.DeleteOptions`).
public struct DeleteOptions: Sendable {
    public enum PropagationPolicy: String, Sendable { case orphan = "Orphan", background = "Background", foreground = "Foreground" }

    public var propagationPolicy: PropagationPolicy?
    /// Delete only if the object still has this uid / resourceVersion.
    public var preconditionUID: String?
    public var preconditionResourceVersion: String?

    public init(propagationPolicy: PropagationPolicy? = nil, preconditionUID: String? = nil, preconditionResourceVersion: String? = nil) {
        self.propagationPolicy = propagationPolicy
        self.preconditionUID = preconditionUID
        self.preconditionResourceVersion = preconditionResourceVersion
    }

    /// The `DeleteOptions` object, or nil when every option is left to the server.
    public func json() -> JSONValue? {
        var members: [String: JSONValue] = ["kind": .string("DeleteOptions"), "apiVersion": .string("v1")]
        if let propagationPolicy { members["propagationPolicy"] = .string(propagationPolicy.rawValue) }
        var preconditions: [String: JSONValue] = [:]
        if let preconditionUID { preconditions["uid"] = .string(preconditionUID) }
        if let preconditionResourceVersion { preconditions["resourceVersion"] = .string(preconditionResourceVersion) }
        if !preconditions.isEmpty { members["preconditions"] = .object(preconditions) }
        return members.count > 2 ? .object(members) : nil
    }
}
