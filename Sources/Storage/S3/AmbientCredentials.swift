import AsyncHTTPClient
import Foundation
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

    public init(source: any S3CredentialSource, summary: String) {
        self.source = source
        self.summary = summary
    }

    /// The credentials `environment` names; nil when it names none. Throws
    /// ``S3CredentialsError`` when it names a source half (a role without a token file), or
    /// a container endpoint that is not allowed. `http` is the client STS and the endpoint are
    /// called with (by default the process's shared one, which trusts the system's CAs).
    public static func fromEnvironment(_ environment: [String: String], http: HTTPClient = .shared,
                                       refreshAhead: Duration = .seconds(600)) throws -> AmbientCredentials? {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        if value("AWS_ACCESS_KEY_ID") != nil || value("AWS_SECRET_ACCESS_KEY") != nil {
            guard let keyID = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else {
                throw S3CredentialsError(source: "environment", message: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
            }
            return AmbientCredentials(source: S3Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")),
                                      summary: "the environment (AWS_ACCESS_KEY_ID)")
        }
        if value("AWS_WEB_IDENTITY_TOKEN_FILE") != nil || value("AWS_ROLE_ARN") != nil {
            guard let tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE"), let roleARN = value("AWS_ROLE_ARN") else {
                throw S3CredentialsError(source: "web identity", message: "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must be set together")
            }
            let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
            let sts = SecurityTokenService(endpoint: value("AWS_ENDPOINT_URL_STS") ?? SecurityTokenService.awsEndpoint(region: region),
                                           region: region, http: http)
            let sessionName = SecurityTokenService.sessionName(value("AWS_ROLE_SESSION_NAME") ?? "talos-etcd-backup")
            return AmbientCredentials(source: webIdentity(sts: sts, roleARN: roleARN, tokenFile: tokenFile, sessionName: sessionName,
                                                          refreshAhead: refreshAhead),
                                      summary: "web identity (role \(roleARN), token file \(tokenFile))")
        }
        let uri: String? = value("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            ?? value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map { "http://169.254.170.2" + ($0.hasPrefix("/") ? $0 : "/" + $0) }
        if let uri {
            let token: ContainerEndpoint.Token? = value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map { .file($0) }
                ?? value("AWS_CONTAINER_AUTHORIZATION_TOKEN").map { .value($0) }
            let endpoint = try ContainerEndpoint(uri: uri, token: token, http: http)
            return AmbientCredentials(source: RenewingCredentials(refreshAhead: refreshAhead) { try await endpoint.fetch() },
                                      summary: "the container credentials endpoint \(uri)")
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

    /// A token file's content, trimmed: at most 64 KiB, UTF-8, not empty.
    static func readToken(_ path: String, what: String) throws -> String {
        let source = "\(what) \(path)"
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
        let agent = ["localhost", "127.0.0.1", "::1", "169.254.170.2", "169.254.170.23", "fd00:ec2::23"].contains(bare) || bare.hasPrefix("127.")
        guard scheme == "https" || (scheme == "http" && agent) else {
            throw S3CredentialsError(source: source, message: "must be https, or http to a loopback address or the container agent (169.254.170.2, 169.254.170.23, fd00:ec2::23)")
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
