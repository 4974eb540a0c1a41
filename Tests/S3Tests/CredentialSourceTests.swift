import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import S3
import S3TestSupport
import Synchronization
import TestSupport
import Testing

/// The roles scripts/s3-test-services.py creates in the authenticating moto: one that may do
/// anything in S3, one that may only read. Moto checks a session token against the role it
/// was issued for and applies the role's policy, so these tests see the role's credentials,
/// not the user's, sign each request.
struct TestRoles {
    let writer: String
    let reader: String

    static func fromEnvironment() throws -> TestRoles {
        let environment = ProcessInfo.processInfo.environment
        return TestRoles(writer: try #require(environment["S3_TEST_AUTH_ROLE_ARN"], "run the tests with scripts/test, which creates the roles"),
                         reader: try #require(environment["S3_TEST_AUTH_READER_ROLE_ARN"]))
    }
}

/// A clock a test moves by hand, for credentials that should expire during a test.
final class ManualClock: Sendable {
    private let time = Mutex(Date())
    var now: Date { time.withLock { $0 } }
    func advance(by seconds: TimeInterval) { time.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A directory of its own with a token file in it (remove it with `removeTemporaryDirectory`).
struct TokenFile {
    let directory: URL
    var path: String { directory.appendingPathComponent("token").path }

    init() throws {
        directory = try makeTemporaryDirectory("tokens")
    }

    /// Replaces the file at once, as the kubelet does (a rename).
    func write(_ token: String) throws {
        let next = directory.appendingPathComponent("token.next")
        try Data(token.utf8).write(to: next)
        guard rename(next.path, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    func remove() throws { try FileManager.default.removeItem(atPath: path) }
}

@Suite("S3 credentials that are not static keys: web identity, assumed roles, a container endpoint, session tokens")
struct CredentialSourceTests {
    let server: S3TestServer
    let roles: TestRoles

    init() throws {
        server = try S3TestServer.named("AUTH")
        roles = try TestRoles.fromEnvironment()
    }

    var sts: SecurityTokenService {
        SecurityTokenService(endpoint: server.endpoint, region: server.region, http: HTTPClient.shared)
    }

    func client(_ credentials: any S3CredentialSource, assumeRole: S3AssumeRole? = nil) throws -> S3Client {
        var configuration = try server.configuration()
        configuration.credentials = credentials
        configuration.assumeRole = assumeRole
        configuration.maxAttempts = 1
        return try S3Client(configuration: configuration)
    }

    @Test("web identity: the token is exchanged at STS, and the role's session credentials sign requests that moto checks against the role's policy")
    func webIdentity() async throws {
        let token = try TokenFile()
        defer { removeTemporaryDirectory(token.directory) }
        try token.write("token-of-the-service-account")
        let writer = AmbientCredentials.webIdentity(sts: sts, roleARN: roles.writer, tokenFile: token.path, sessionName: "tests")
        let client = try client(writer)
        defer { Task { try? await client.shutdown() } }
        let key = uniqueKey("web-identity.db")
        try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(string: "by the writer role"))
        let (_, body) = try await client.getObject(bucket: server.bucket, key: key)
        var collected = ByteBuffer()
        for try await var chunk in body { collected.writeBuffer(&chunk) }
        #expect(String(buffer: collected) == "by the writer role")
        let issued = try await writer.credentials()
        #expect(issued.sessionToken?.isEmpty == false, "STS credentials come with a session token")
        #expect(issued.accessKeyID != server.credentials.accessKeyID)
        #expect(await writer.fetchCount == 1, "one exchange for every request while the credentials last")

        // The reader role may read, not write: the role's policy applies, not the user's.
        let reader = AmbientCredentials.webIdentity(sts: sts, roleARN: roles.reader, tokenFile: token.path, sessionName: "tests")
        let readerClient = try self.client(reader)
        defer { Task { try? await readerClient.shutdown() } }
        #expect(try await readerClient.headObject(bucket: server.bucket, key: key).size == 18)
        let refused = await s3Error { try await readerClient.putObject(bucket: server.bucket, key: uniqueKey("x"), body: ByteBuffer(string: "x")) }
        #expect(refused?.code == "AccessDenied", "\(String(describing: refused))")

        // The session token is checked: the same keys with another token are refused.
        var tampered = issued
        tampered.sessionToken = "not-" + (issued.sessionToken ?? "")
        let tamperedClient = try self.client(tampered)
        defer { Task { try? await tamperedClient.shutdown() } }
        let invalid = await s3Error { _ = try await tamperedClient.headObject(bucket: server.bucket, key: key) }
        #expect(invalid?.statusCode == 400, "InvalidToken, as S3 answers a token it did not issue: \(String(describing: invalid))")
        try await client.deleteObject(bucket: server.bucket, key: key)
    }

    @Test("a projected service account token, as the kubelet lays it out (token -> ..data/token -> ..<timestamp>/token), is read; a directory is refused")
    func projectedToken() async throws {
        let directory = try makeTemporaryDirectory("projected")
        defer { removeTemporaryDirectory(directory) }
        let version = directory.appendingPathComponent("..2026_12_05_14_00_00.123")
        try FileManager.default.createDirectory(at: version, withIntermediateDirectories: true)
        try Data("projected-token".utf8).write(to: version.appendingPathComponent("token"))
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("..data").path, withDestinationPath: version.lastPathComponent)
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("token").path, withDestinationPath: "..data/token")
        let source = AmbientCredentials.webIdentity(sts: sts, roleARN: roles.writer, tokenFile: directory.appendingPathComponent("token").path,
                                                    sessionName: "tests")
        #expect(try await source.credentials().sessionToken?.isEmpty == false)
        let notAFile = AmbientCredentials.webIdentity(sts: sts, roleARN: roles.writer, tokenFile: version.path, sessionName: "tests")
        let error = await TestHelpers.caught(S3CredentialsError.self) { _ = try await notAFile.credentials() }
        #expect(error?.message == "is not a regular file", "\(String(describing: error))")
    }

    @Test("a long upload outlives its credentials: new ones are fetched between parts, the rotated token file read again each time")
    func renewalDuringUpload() async throws {
        let token = try TokenFile()
        defer { removeTemporaryDirectory(token.directory) }
        try token.write("token-0")
        let clock = ManualClock()
        let source = AmbientCredentials.webIdentity(sts: sts, roleARN: roles.writer, tokenFile: token.path, sessionName: "tests",
                                                    now: { clock.now })
        let client = try client(source)
        defer { Task { try? await client.shutdown() } }
        // Each chunk moves the clock 40 minutes on and rotates the token. Moto's credentials
        // last an hour of real time, so after the first hour of this clock each one it hands
        // out has expired by this clock's reckoning and is replaced after 30 s of it (the
        // minimum keep): the parts after that are signed with new credentials, each from a
        // token file read again. The timing of renewal itself is RenewingCredentialsTests'.
        let data = GeneratedBytes(length: 6 * MultipartUploader.minimumPartSize, seed: 7, chunkSize: MultipartUploader.minimumPartSize)
        let rotations = Mutex(0)
        let ticking = data.map { chunk -> ByteBuffer in
            clock.advance(by: 40 * 60)
            let number = rotations.withLock { $0 += 1; return $0 }
            try token.write("token-\(number)")
            return chunk
        }
        let key = uniqueKey("renewed.db")
        let uploader = MultipartUploader(client: client, partSize: MultipartUploader.minimumPartSize, maxConcurrentParts: 1)
        let result = try await uploader.upload(ticking, bucket: server.bucket, key: key)
        #expect(result.sha256 == (try await data.sha256()))
        #expect(result.partCount == 6)
        let fetches = await source.fetchCount
        #expect(fetches >= 4, "renewed during the upload: \(fetches) exchanges")
        #expect(try await server.readBack(key).sha256 == result.sha256)

        // The file is read at each renewal: once it is gone, the next renewal fails naming it,
        // as soon as the credentials held have expired.
        try token.remove()
        clock.advance(by: 2 * 3600)
        let error = await TestHelpers.caught(S3CredentialsError.self) { _ = try await client.headObject(bucket: server.bucket, key: key) }
        #expect(error?.source.contains(token.path) == true, "\(String(describing: error))")
        #expect(error?.source.contains("AWS_WEB_IDENTITY_TOKEN_FILE") == true)
        #expect(error?.message.contains("cannot be read") == true)
        let owner = try self.client(server.credentials)
        try? await owner.deleteObject(bucket: server.bucket, key: key)
        try await owner.shutdown()
    }

    @Test("a renewal that fails while the credentials held are still valid: those are used, and the next request tries again")
    func renewalFailureKeepsValidCredentials() async throws {
        let token = try TokenFile()
        defer { removeTemporaryDirectory(token.directory) }
        try token.write("token")
        let clock = ManualClock()
        let source = AmbientCredentials.webIdentity(sts: sts, roleARN: roles.writer, tokenFile: token.path, sessionName: "tests",
                                                    now: { clock.now })
        let first = try await source.credentials()
        try token.remove()
        clock.advance(by: 55 * 60)  // within the last ten minutes: due for renewal, not expired
        #expect(try await source.credentials() == first)
        #expect(await source.fetchCount == 2)
        clock.advance(by: 10 * 60)  // expired
        await #expect(throws: S3CredentialsError.self) { _ = try await source.credentials() }
    }

    @Test("STS refusals and nonsense are errors that name the role and the endpoint, never a token")
    func stsErrors() async throws {
        let token = try TokenFile()
        defer { removeTemporaryDirectory(token.directory) }
        try token.write("secret-token-value")
        // STS refusing, as AWS does for a token its trust policy does not accept (moto accepts
        // every token, so a server answers here with STS's error document).
        let refusal = """
            <ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>\
            <Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error><RequestId>r-1</RequestId></ErrorResponse>
            """
        try await ContainerEndpointServer.with(answer: { _ in (.forbidden, refusal) }) { endpoint in
            let refusing = AmbientCredentials.webIdentity(sts: SecurityTokenService(endpoint: endpoint, region: server.region, http: HTTPClient.shared),
                                                          roleARN: "arn:aws:iam::123456789012:role/etcd-backup", tokenFile: token.path, sessionName: "tests")
            let refused = await TestHelpers.caught(S3CredentialsError.self) { _ = try await refusing.credentials() }
            #expect(refused?.source == "STS AssumeRoleWithWebIdentity of role arn:aws:iam::123456789012:role/etcd-backup at \(endpoint)",
                    "\(String(describing: refused))")
            #expect(refused?.message == "refused with HTTP 403 (AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity)")
            #expect(refused?.retryable == false)
            #expect(refused.map { !"\($0)".contains("secret-token-value") } == true)
        }

        // A server that answers 200 with something else than credentials.
        try await ContainerEndpointServer.with(answer: { _ in (.ok, "<AssumeRoleWithWebIdentityResponse/>") }) { endpoint in
            let nonsense = AmbientCredentials.webIdentity(sts: SecurityTokenService(endpoint: endpoint, region: server.region, http: HTTPClient.shared),
                                                          roleARN: roles.writer, tokenFile: token.path, sessionName: "tests")
            let error = await TestHelpers.caught(S3CredentialsError.self) { _ = try await nonsense.credentials() }
            #expect(error?.message == "the answer holds no credentials that can be read", "\(String(describing: error))")
        }
        // Nothing listening: each attempt bounded by the timeout, retried, then an error that says so.
        let nowhere = SecurityTokenService(endpoint: "http://127.0.0.1:1", region: server.region, http: HTTPClient.shared, timeout: .seconds(1))
        let nobody = AmbientCredentials.webIdentity(sts: nowhere,
                                                    roleARN: roles.writer, tokenFile: token.path, sessionName: "tests")
        let unreachable = await TestHelpers.caught(S3CredentialsError.self) { _ = try await nobody.credentials() }
        #expect(unreachable?.message.hasPrefix("cannot reach STS") == true, "\(String(describing: unreachable))")
    }

    @Test("roleARN: the client's keys only call AssumeRole; the role's credentials sign, with the role's policy")
    func assumeRole() async throws {
        let writer = try client(server.credentials, assumeRole: S3AssumeRole(roleARN: roles.writer, sessionName: "talos-etcd-backup.tenant", externalID: "tenant"))
        defer { Task { try? await writer.shutdown() } }
        let key = uniqueKey("assumed.db")
        try await writer.putObject(bucket: server.bucket, key: key, body: ByteBuffer(string: "assumed"))
        let reader = try client(server.credentials, assumeRole: S3AssumeRole(roleARN: roles.reader, sessionName: "talos-etcd-backup.tenant"))
        defer { Task { try? await reader.shutdown() } }
        #expect(try await reader.headObject(bucket: server.bucket, key: key).size == 7)
        let refused = await s3Error { try await reader.putObject(bucket: server.bucket, key: uniqueKey("x"), body: ByteBuffer(string: "x")) }
        #expect(refused?.code == "AccessDenied", "\(String(describing: refused))")
        // Keys that may not call STS: the error names the role, not the keys.
        let wrong = try client(S3Credentials(accessKeyID: server.credentials.accessKeyID, secretAccessKey: "wrong"),
                               assumeRole: S3AssumeRole(roleARN: roles.writer, sessionName: "s"))
        defer { Task { try? await wrong.shutdown() } }
        let error = await TestHelpers.caught(S3CredentialsError.self) { _ = try await wrong.headObject(bucket: server.bucket, key: key) }
        #expect(error?.source.contains("AssumeRole of role \(roles.writer)") == true, "\(String(describing: error))")
        #expect(error?.message.contains("refused with HTTP 403") == true, "\(String(describing: error))")
        try await writer.deleteObject(bucket: server.bucket, key: key)
    }

    @Test("static keys with a session token: the token is signed and sent, and checked")
    func sessionToken() async throws {
        let issued = try await sts.assumeRole(roleARN: roles.writer, sessionName: "tests", externalID: nil, credentials: server.credentials)
        let temporary = S3Credentials(accessKeyID: issued.accessKeyID, secretAccessKey: issued.secretAccessKey, sessionToken: issued.sessionToken)
        let client = try client(temporary)
        defer { Task { try? await client.shutdown() } }
        let key = uniqueKey("session.db")
        try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(string: "s"))
        let without = try self.client(S3Credentials(accessKeyID: issued.accessKeyID, secretAccessKey: issued.secretAccessKey))
        defer { Task { try? await without.shutdown() } }
        let refused = await s3Error { _ = try await without.headObject(bucket: server.bucket, key: key) }
        #expect(refused?.statusCode == 403, "temporary keys without their token are refused: \(String(describing: refused))")
        try await client.deleteObject(bucket: server.bucket, key: key)
    }

    @Test("the container credentials endpoint: its token file's content as Authorization, the JSON answer's credentials")
    func containerEndpoint() async throws {
        let issued = try await sts.assumeRole(roleARN: roles.writer, sessionName: "pod-identity", externalID: nil, credentials: server.credentials)
        let answer = """
            {"AccessKeyId": "\(issued.accessKeyID)", "SecretAccessKey": "\(issued.secretAccessKey)", \
            "Token": "\(issued.sessionToken ?? "")", "Expiration": "\(iso(issued.expiration ?? Date()))"}
            """
        let token = try TokenFile()
        defer { removeTemporaryDirectory(token.directory) }
        try token.write("agent-token-1")
        try await ContainerEndpointServer.with(answer: { authorization in
            authorization == "agent-token-1" ? (.ok, answer) : (.unauthorized, "{}")
        }) { endpoint in
            let environment = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint + "/v1/credentials",
                               "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": token.path]
            let ambient = try #require(try AmbientCredentials.fromEnvironment(environment))
            #expect(ambient.summary == "the container credentials endpoint \(endpoint)/v1/credentials")
            let client = try client(ambient.source)
            defer { Task { try? await client.shutdown() } }
            let key = uniqueKey("pod-identity.db")
            try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(string: "pod identity"))
            #expect(try await client.headObject(bucket: server.bucket, key: key).size == 12)
            try await client.deleteObject(bucket: server.bucket, key: key)

            // A token the agent does not know: refused, and said so.
            try token.write("agent-token-2")
            let stale = try #require(try AmbientCredentials.fromEnvironment(environment))
            let error = await TestHelpers.caught(S3CredentialsError.self) { _ = try await stale.source.credentials() }
            #expect(error?.message == "refused with HTTP 401", "\(String(describing: error))")
            #expect(error.map { !"\($0)".contains("agent-token") } == true)
        }
        // An answer that is not credentials.
        for body in ["not json", "{\"AccessKeyId\": 1, \"SecretAccessKey\": \"s\"}", "{\"AccessKeyId\": \"a\", \"SecretAccessKey\": \"s\", \"Expiration\": \"soon\"}"] {
            try await ContainerEndpointServer.with(answer: { _ in (.ok, body) }) { endpoint in
                let ambient = try #require(try AmbientCredentials.fromEnvironment(["AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint]))
                let error = await TestHelpers.caught(S3CredentialsError.self) { _ = try await ambient.source.credentials() }
                #expect(error?.message == "the answer holds no credentials that can be read", "\(body): \(String(describing: error))")
            }
        }
    }

    @Test("the environment: which source wins, and what is refused before any request")
    func environment() throws {
        #expect(try AmbientCredentials.fromEnvironment([:]) == nil)
        let keys = try #require(try AmbientCredentials.fromEnvironment([
            "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
        ]))
        #expect(keys.summary == "the environment (AWS_ACCESS_KEY_ID)")
        #expect(keys.source as? S3Credentials == S3Credentials(accessKeyID: "AKIA", secretAccessKey: "s", sessionToken: "t"))
        let web = try #require(try AmbientCredentials.fromEnvironment([
            "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1",
        ]))
        #expect(web.summary == "web identity (role arn:aws:iam::1:role/r, token file /var/run/token)")
        let cases: [([String: String], String)] = [
            (["AWS_ACCESS_KEY_ID": "AKIA"], "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together"),
            (["AWS_ROLE_ARN": "arn:aws:iam::1:role/r"], "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must be set together"),
            (["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.1/creds"], "must be https, or http to a loopback address"),
            (["AWS_CONTAINER_CREDENTIALS_FULL_URI": "ftp://127.0.0.1/creds"], "must be https, or http to a loopback address"),
            (["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.attacker.example/creds"], "must be https, or http to a loopback address"),
        ]
        for (environment, message) in cases {
            #expect { _ = try AmbientCredentials.fromEnvironment(environment) } throws: { error in
                "\(error)".contains(message)
            }
        }
        let relative = try #require(try AmbientCredentials.fromEnvironment(["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x",
                                                                             "AWS_CONTAINER_CREDENTIALS_FULL_URI": "https://example.com/creds"]))
        #expect(relative.summary == "the container credentials endpoint http://169.254.170.2/v2/credentials/x")
    }

    func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: date)
    }
}

/// A container credentials endpoint (or anything else that answers every request with one
/// body): `answer(authorization)` gives the status and body.
enum ContainerEndpointServer {
    static func with(answer: @escaping @Sendable (String?) -> (HTTPResponse.Status, String),
                     _ body: (_ endpoint: String) async throws -> Void) async throws {
        let port = Mutex(0)
        try await whileServing("container credentials endpoint", { listening in
            let router = Router()
            let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
                let (status, text) = answer(request.headers[.authorization])
                return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            router.get("/**", use: handler)
            router.post("/**", use: handler)
            router.get("/", use: handler)
            router.post("/", use: handler)
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { channel in
                                      port.withLock { $0 = channel.localAddress?.port ?? 0 }
                                      listening()
                                  },
                                  logger: quietLogger("container-endpoint"))
            try await app.run()
        }) {
            try await body("http://127.0.0.1:\(port.withLock { $0 })")
        }
    }
}
