import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import S3Responses

/// The credentials a process has without being given keys, found in its environment the way
/// the AWS SDKs look, first match wins:
/// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 2. web identity (IRSA): `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`
///    (`AWS_ROLE_SESSION_NAME`), exchanged at STS (`AWS_ENDPOINT_URL_STS`, else the regional
///    endpoint of `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`'s) by
///    AssumeRoleWithWebIdentity; the token file is read again at each renewal, since the
///    kubelet rotates it;
/// 3. a container credentials endpoint (EKS Pod Identity, ECS):
///    `AWS_CONTAINER_CREDENTIALS_FULL_URI` (https, or http to a loopback or the link-local
///    agent address) or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, with the token of
///    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (read each time) or
///    `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
/// Instance metadata (IMDS) is not used: on a shared node it is every pod's identity.
public struct AmbientCredentials: Sendable {
    public let source: any S3CredentialSource
    /// Which of the three, and from what (a variable or a role ARN; never a secret).
    public let summary: String
    /// Where roles are assumed with them (`AWS_ENDPOINT_URL_STS`); nil: AWS STS of the
    /// bucket's region. Never a tenant's S3 endpoint: the operator's signed requests and
    /// session token go only where the operator's owner says.
    public let stsEndpoint: String?
    /// The region AssumeRole requests are signed for (`AWS_REGION`, `AWS_DEFAULT_REGION`); nil:
    /// the bucket's.
    public let stsRegion: String?

    public init(source: any S3CredentialSource, summary: String, stsEndpoint: String? = nil, stsRegion: String? = nil) {
        self.source = source
        self.summary = summary
        self.stsEndpoint = stsEndpoint
        self.stsRegion = stsRegion
    }

    /// Credentials of `roleARN`, assumed with these at the operator's STS over the operator's
    /// client (never a tenant's endpoint or TLS settings), renewed before they expire.
    public func assuming(roleARN: String, sessionName: String, externalID: String?, bucketRegion: String) -> RenewingCredentials {
        let region = stsRegion ?? bucketRegion
        let sts = SecurityTokenService(endpoint: stsEndpoint ?? SecurityTokenService.awsEndpoint(region: region), region: region,
                                       http: Self.http)
        let base = source
        return RenewingCredentials {
            try await sts.assumeRole(roleARN: roleARN, sessionName: sessionName, externalID: externalID, credentials: try await base.credentials())
        }
    }

    /// The client the credential services are called with: redirects are not followed (a
    /// redirected POST would carry the web identity token, a redirected GET the agent's token,
    /// elsewhere). Lives as long as the process.
    public static let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                                        configuration: HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                                                timeout: .init(connect: .seconds(10))))

    /// The credentials `environment` names; nil when it names none. Throws
    /// ``S3CredentialsError`` when it names a source half (a role without a token file), or
    /// a container endpoint that is not allowed. `http` is the client STS and the endpoint are
    /// called with (by default the process's shared one, which trusts the system's CAs).
    public static func fromEnvironment(_ environment: [String: String], http: HTTPClient = AmbientCredentials.http,
                                       refreshAhead: Duration = .seconds(600)) throws -> AmbientCredentials? {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
            return text
        }
        let stsEndpoint = value("AWS_ENDPOINT_URL_STS")
        let stsRegion = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION")
        if value("AWS_ACCESS_KEY_ID") != nil || value("AWS_SECRET_ACCESS_KEY") != nil {
            guard let keyID = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else {
                throw S3CredentialsError(source: "environment", message: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
            }
            return AmbientCredentials(source: S3Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")),
                                      summary: "the environment (AWS_ACCESS_KEY_ID)", stsEndpoint: stsEndpoint, stsRegion: stsRegion)
        }
        if value("AWS_WEB_IDENTITY_TOKEN_FILE") != nil || value("AWS_ROLE_ARN") != nil {
            guard let tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE"), let roleARN = value("AWS_ROLE_ARN") else {
                throw S3CredentialsError(source: "web identity", message: "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must be set together")
            }
            let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
            let sts = SecurityTokenService(endpoint: stsEndpoint ?? SecurityTokenService.awsEndpoint(region: region),
                                           region: region, http: http)
            let sessionName = SecurityTokenService.sessionName(value("AWS_ROLE_SESSION_NAME") ?? "talos-etcd-backup")
            return AmbientCredentials(source: webIdentity(sts: sts, roleARN: roleARN, tokenFile: tokenFile, sessionName: sessionName,
                                                          refreshAhead: refreshAhead),
                                      summary: "web identity (role \(roleARN), token file \(tokenFile))", stsEndpoint: stsEndpoint, stsRegion: stsRegion)
        }
        // The SDKs' order: the ECS relative URI before a full one.
        let uri: String? = value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map { "http://169.254.170.2" + ($0.hasPrefix("/") ? $0 : "/" + $0) }
            ?? value("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        if let uri {
            let token: ContainerEndpoint.Token? = value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map { .file($0) }
                ?? value("AWS_CONTAINER_AUTHORIZATION_TOKEN").map { .value($0) }
            let endpoint = try ContainerEndpoint(uri: uri, token: token, http: http)
            return AmbientCredentials(source: RenewingCredentials(refreshAhead: refreshAhead) { try await endpoint.fetch() },
                                      summary: "the container credentials endpoint \(uri)", stsEndpoint: stsEndpoint, stsRegion: stsRegion)
        }
        return nil
    }

    /// Credentials of `roleARN` for the web identity token in `tokenFile`, renewed before they
    /// expire, the file read again each time.
    public static func webIdentity(sts: SecurityTokenService, roleARN: String, tokenFile: String, sessionName: String,
                                   refreshAhead: Duration = .seconds(600),
                                   now: @escaping @Sendable () -> Date = { Date() }) -> RenewingCredentials {
        RenewingCredentials(refreshAhead: refreshAhead, now: now) {
            let token = try readToken(tokenFile, what: "web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE)")
            return try await sts.assumeRoleWithWebIdentity(roleARN: roleARN, sessionName: sessionName, token: token)
        }
    }

    /// A token file's content, trimmed: a regular file (a FIFO would block the reading thread),
    /// at most 64 KiB, UTF-8, not empty.
    static func readToken(_ path: String, what: String) throws -> String {
        let source = "\(what) \(path)"
        // stat, not lstat: the kubelet's projected tokens are symlinks (token -> ..data/token).
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG {
            throw S3CredentialsError(source: source, message: "is not a regular file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw S3CredentialsError(source: source, message: "cannot be read (missing, or not readable by the operator)")
        }
        defer { try? handle.close() }
        let limit = 64 * 1024
        let data: Data
        do {
            data = try handle.read(upToCount: limit + 1) ?? Data()
        } catch {
            throw S3CredentialsError(source: source, message: "cannot be read: \(error)")
        }
        guard data.count <= limit else { throw S3CredentialsError(source: source, message: "is larger than 64 KiB") }
        guard let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
            throw S3CredentialsError(source: source, message: "is empty or not UTF-8 text")
        }
        return text
    }
}

/// A container credentials endpoint (ECS, EKS Pod Identity): GET with the agent's token as
/// `Authorization`, a JSON answer of temporary credentials.
struct ContainerEndpoint: Sendable {
    enum Token: Sendable {
        case file(String)
        case value(String)
    }

    let uri: String
    let token: Token?
    let http: HTTPClient
    let timeout: Duration = .seconds(10)

    /// Refuses a URI the SDKs refuse: plain http is only for the agent's addresses (loopback,
    /// 169.254.170.2, 169.254.170.23, fd00:ec2::23), so the token never crosses a network in
    /// the clear.
    init(uri: String, token: Token?, http: HTTPClient) throws {
        let source = "the container credentials endpoint \(uri)"
        guard let url = URLComponents(string: uri), let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else {
            throw S3CredentialsError(source: source, message: "is not a URL")
        }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        // Addresses only (a name such as 127.example.com could resolve anywhere): 127.0.0.0/8,
        // ::1, and the agents' link-local addresses.
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        let loopbackV4 = octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        let agent = loopbackV4 || ["::1", "169.254.170.2", "169.254.170.23", "fd00:ec2::23"].contains(bare)
        guard scheme == "https" || (scheme == "http" && agent) else {
            throw S3CredentialsError(source: source, message: "must be https, or http to a loopback address (127.0.0.0/8, ::1) or the container agent (169.254.170.2, 169.254.170.23, fd00:ec2::23)")
        }
        self.uri = uri
        self.token = token
        self.http = http
    }

    func fetch() async throws -> TemporaryCredentials {
        let source = "the container credentials endpoint \(uri)"
        var request = HTTPClientRequest(url: uri)
        request.method = .GET
        switch token {
        case .file(let path):
            request.headers.add(name: "authorization", value: try AmbientCredentials.readToken(path, what: "container authorization token file (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)"))
        case .value(let value):
            request.headers.add(name: "authorization", value: value)
        case nil:
            break
        }
        return try await fetchTemporaryCredentials(request, http: http, timeout: timeout, limit: 64 * 1024, source: source,
                                                   unreachable: "cannot reach it") { status, data in
            guard status == 200 else {
                throw S3CredentialsError(source: source, message: "refused with HTTP \(status)", retryable: status >= 500 || status == 429)
            }
            return CredentialResponses.containerCredentials(data)
        }
    }
}
