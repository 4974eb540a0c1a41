import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import S3Responses
import Waiting

/// Where an S3 client gets the credentials it signs each request with: a fixed pair
/// (``S3Credentials`` is one), or a source that renews them before they expire (web identity,
/// a container credentials endpoint, an assumed role). Asked once per request, so a long
/// upload picks up renewed credentials between parts.
public protocol S3CredentialSource: Sendable {
    /// Credentials good for the next request, or ``S3CredentialsError``.
    func credentials() async throws -> S3Credentials
}

extension S3Credentials: S3CredentialSource {
    public func credentials() async throws -> S3Credentials { self }

    init(_ temporary: TemporaryCredentials) {
        self.init(accessKeyID: temporary.accessKeyID, secretAccessKey: temporary.secretAccessKey, sessionToken: temporary.sessionToken)
    }
}

/// Why no credentials could be had: which source (the variable or role it came from) and what
/// went wrong. Never holds a key, a secret, a token or a token file's content.
public struct S3CredentialsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var message: String
    /// False when asking again cannot help (a refusal, a malformed answer, a missing file).
    public var retryable: Bool

    public init(source: String, message: String, retryable: Bool = false) {
        self.source = source
        self.message = message
        self.retryable = retryable
    }

    public var description: String { "\(source): \(message)" }
}

/// Credentials fetched when first needed and renewed shortly before they expire (a web
/// identity token file is read again at each fetch). Callers that find nothing valid wait for
/// one shared fetch, so a tick of a thousand backups sharing one source makes one call, not a
/// thousand. Credentials due for renewal but still valid are used at once while the renewal
/// runs; a renewal that fails is tried again after ``failureBackoff``, and the held
/// credentials serve until they expire.
///
/// Against a clock that disagrees with the issuer, or an issuer that answers nonsense: an
/// answer is kept at least ``minimumKeep`` whatever its expiration says (one fetch per 30 s at
/// most), and one without an expiration ``keepWithoutExpiration``.
///
/// A fetch runs in a task of its own, so that one caller's cancellation does not fail the
/// others waiting for it; it is bounded by its requests' timeouts (a waiting caller that is
/// cancelled still waits for it), and cancelled when the source goes away between fetches.
public actor RenewingCredentials: S3CredentialSource {
    public typealias Fetch = @Sendable () async throws -> TemporaryCredentials

    public static let minimumKeep: TimeInterval = 30
    public static let keepWithoutExpiration: TimeInterval = 3600
    public static let failureBackoff: TimeInterval = 30

    private struct Held {
        var credentials: TemporaryCredentials
        var renewAt: Date
        var usableUntil: Date?
    }

    private let fetch: Fetch
    private let refreshAhead: Duration
    private let now: @Sendable () -> Date
    private var held: Held?
    private var inFlight: Task<TemporaryCredentials, any Error>?
    private var lastFailure: Date?
    /// How many fetches have been started (for tests and logs).
    public private(set) var fetchCount = 0

    /// `refreshAhead`: how long before expiry to renew (at most half the credentials' lifetime).
    public init(refreshAhead: Duration = .seconds(600), now: @escaping @Sendable () -> Date = { Date() }, fetch: @escaping Fetch) {
        self.fetch = fetch
        self.refreshAhead = refreshAhead
        self.now = now
    }

    deinit { inFlight?.cancel() }

    public func credentials() async throws -> S3Credentials {
        let time = now()
        if let held, held.usableUntil.map({ time < $0 }) ?? true {
            if time >= held.renewAt, inFlight == nil, lastFailure.map({ time.timeIntervalSince($0) >= Self.failureBackoff }) ?? true {
                _ = start()
            }
            return S3Credentials(held.credentials)
        }
        let task = inFlight ?? start()
        return S3Credentials(try await task.value)
    }

    private func start() -> Task<TemporaryCredentials, any Error> {
        fetchCount += 1
        let fetch = self.fetch
        let task = Task { [weak self] in
            do {
                let fresh = try await fetch()
                await self?.finished(fresh)
                return fresh
            } catch {
                await self?.failed()
                throw error
            }
        }
        inFlight = task
        return task
    }

    /// Waits for a fetch under way, if any (for tests).
    public func settled() async {
        _ = try? await inFlight?.value
    }

    private func finished(_ fresh: TemporaryCredentials) {
        inFlight = nil
        lastFailure = nil
        let time = now()
        guard let expiration = fresh.expiration else {
            held = Held(credentials: fresh, renewAt: time.addingTimeInterval(Self.keepWithoutExpiration), usableUntil: nil)
            return
        }
        let lifetime = expiration.timeIntervalSince(time)
        let ahead = min(Double(refreshAhead.components.seconds), max(lifetime, 0) / 2)
        let floor = time.addingTimeInterval(Self.minimumKeep)
        held = Held(credentials: fresh, renewAt: max(expiration.addingTimeInterval(-ahead), floor), usableUntil: max(expiration, floor))
    }

    private func failed() {
        inFlight = nil
        lastFailure = now()
    }
}

/// The AWS Security Token Service calls the operator makes: AssumeRoleWithWebIdentity (IRSA:
/// unsigned, the token proves who asks) and AssumeRole (signed with the credentials that may
/// assume the role). Over the caller's HTTP client; answers are read as hostile (bounded,
/// nil-returning readers in ``CredentialResponses``).
public struct SecurityTokenService: Sendable {
    /// Base URL: `https://sts.<region>.amazonaws.com`, or an S3-compatible store's own
    /// endpoint (Ceph RGW and MinIO serve STS beside S3).
    public var endpoint: String
    public var region: String
    public var timeout: Duration
    let http: HTTPClient

    public init(endpoint: String, region: String, http: HTTPClient, timeout: Duration = .seconds(10)) {
        self.endpoint = endpoint
        self.region = region
        self.http = http
        self.timeout = timeout
    }

    /// The regional endpoint of AWS STS.
    public static func awsEndpoint(region: String) -> String { "https://sts.\(region).amazonaws.com" }

    /// A role's session name may hold `[A-Za-z0-9+=,.@-]`, 2 to 64 of them: anything else in
    /// `text` becomes `-`, and it is cut to 64.
    public static func sessionName(_ text: String) -> String {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@-")
        let cleaned = String(text.map { allowed.contains($0) ? $0 : "-" }.prefix(64))
        return cleaned.count >= 2 ? cleaned : "talos-etcd-backup"
    }

    public func assumeRoleWithWebIdentity(roleARN: String, sessionName: String, token: String,
                                          duration: Duration = .seconds(3600)) async throws -> TemporaryCredentials {
        try await call(action: "AssumeRoleWithWebIdentity", roleARN: roleARN, parameters: [
            ("RoleSessionName", sessionName), ("WebIdentityToken", token), ("DurationSeconds", String(duration.components.seconds)),
        ], signer: nil)
    }

    /// `externalID`, when given, is what the role's trust policy can require (`sts:ExternalId`).
    public func assumeRole(roleARN: String, sessionName: String, externalID: String?, credentials: S3Credentials,
                           duration: Duration = .seconds(3600)) async throws -> TemporaryCredentials {
        var parameters = [("RoleSessionName", sessionName), ("DurationSeconds", String(duration.components.seconds))]
        if let externalID { parameters.append(("ExternalId", externalID)) }
        return try await call(action: "AssumeRole", roleARN: roleARN, parameters: parameters,
                              signer: SigV4Signer(credentials: credentials, region: region, service: "sts"))
    }

    private func call(action: String, roleARN: String, parameters: [(String, String)], signer: SigV4Signer?) async throws -> TemporaryCredentials {
        let source = "STS \(action) of role \(roleARN) at \(endpoint)"
        guard let url = URLComponents(string: endpoint), let scheme = url.scheme, scheme == "https" || scheme == "http", let host = url.host else {
            throw S3CredentialsError(source: source, message: "the STS endpoint is not an http(s) URL")
        }
        let authority = (host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host) + (url.port.map { ":\($0)" } ?? "")
        let form = ([("Action", action), ("Version", "2011-06-15"), ("RoleArn", roleARN)] + parameters)
            .map { SigV4Signer.uriEncode($0.0, keepSlash: false) + "=" + SigV4Signer.uriEncode($0.1, keepSlash: false) }
            .joined(separator: "&")
        let body = ByteBuffer(string: form)
        var headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")]
        if let signer {
            headers = signer.signedHeaders(for: .init(method: "POST", host: authority, path: "/", headers: headers),
                                           payloadHash: S3Client.PayloadDigest(body).hex, date: Date())
        }
        var request = HTTPClientRequest(url: "\(scheme)://\(authority)/")
        request.method = .POST
        for (name, value) in headers where name != "host" { request.headers.add(name: name, value: value) }
        request.body = .bytes(body)
        return try await fetchTemporaryCredentials(request, http: http, timeout: timeout, limit: 256 * 1024, source: source,
                                                   unreachable: "cannot reach STS") { status, data in
            guard status == 200 else {
                let document = CredentialResponses.serviceError(data)
                let said = document.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: ": ") } ?? ""
                // As the AWS SDKs: an identity provider STS could not reach, or a token read
                // while the kubelet rotated it, may do on the next try.
                let transient = ["Throttling", "IDPCommunicationError", "InvalidIdentityToken"].contains(document?.code ?? "")
                throw S3CredentialsError(source: source, message: "refused with HTTP \(status)" + (said.isEmpty ? "" : " (\(said.prefix(512)))"),
                                         retryable: status >= 500 || status == 429 || transient)
            }
            return CredentialResponses.assumedRoleCredentials(data)
        }
    }
}

/// One request for credentials (to STS, or a container endpoint), up to three attempts while
/// the failure is retryable (unreachable, 5xx, throttled), each bounded by `timeout`, the
/// answer by `limit` bytes. `read` turns the status and body into credentials, nil meaning
/// the answer holds none, or throws the refusal.
func fetchTemporaryCredentials(_ request: HTTPClientRequest, http: HTTPClient, timeout: Duration, limit: Int, source: String, unreachable: String,
                               read: (Int, Data) throws -> TemporaryCredentials?) async throws -> TemporaryCredentials {
    var attempt = 0
    while true {
        attempt += 1
        do {
            let status: Int
            let body: ByteBuffer
            do {
                let response = try await http.execute(request, deadline: .now() + .init(timeout), logger: nil)
                status = Int(response.status.code)
                body = try await withDeadline(timeout, "reading the answer of \(source)") { try await response.body.collect(upTo: limit) }
            } catch is NIOTooManyBytesError {
                throw S3CredentialsError(source: source, message: "the answer is larger than \(limit / 1024) KiB")
            } catch {
                if Task.isCancelled { throw CancellationError() }
                throw S3CredentialsError(source: source, message: "\(unreachable): \(error)", retryable: true)
            }
            guard let credentials = try read(status, Data(body.readableBytesView)) else {
                throw S3CredentialsError(source: source, message: "the answer holds no credentials that can be read")
            }
            return credentials
        } catch let error as S3CredentialsError where error.retryable && attempt < 3 {
            try await Task.sleep(for: Backoff(base: .milliseconds(200), cap: .seconds(5), jitter: true).delay(retry: attempt - 1))
        }
    }
}
