import Foundation
import S3
import TestSupport
import Testing

/// The S3 servers `scripts/test` starts (scripts/s3-test-services.py), from the environment.
public struct S3TestServer: Sendable {
    public var endpoint: String
    public var credentials: S3Credentials
    public var region: String
    public var bucket: String
    public var caFile: String?

    /// An endpoint nothing listens on, for tests whose transfer is scripted and never reaches S3.
    public static var unreachable: S3TestServer {
        S3TestServer(endpoint: "http://127.0.0.1:1", credentials: S3Credentials(accessKeyID: "unused", secretAccessKey: "unused"),
                     region: "us-east-1", bucket: "etcd-backups", caFile: nil)
    }

    /// `name` is AUTH, NOAUTH or TLS.
    public static func named(_ name: String) throws -> S3TestServer {
        let environment = ProcessInfo.processInfo.environment
        let endpoint = try #require(environment["S3_TEST_\(name)_ENDPOINT"],
                                    "S3 test servers are not running: run the tests with scripts/test, which starts them")
        return S3TestServer(
            endpoint: endpoint,
            credentials: S3Credentials(accessKeyID: environment["S3_TEST_\(name)_ACCESS_KEY_ID"] ?? "",
                                       secretAccessKey: environment["S3_TEST_\(name)_SECRET_ACCESS_KEY"] ?? ""),
            region: environment["S3_TEST_REGION"] ?? "us-east-1",
            bucket: environment["S3_TEST_BUCKET"] ?? "etcd-backups",
            caFile: environment["S3_TEST_CA_FILE"])
    }

    /// This server with its bucket created with Object Lock (and so versioned) instead.
    public var lockedBucket: S3TestServer {
        var server = self
        server.bucket = ProcessInfo.processInfo.environment["S3_TEST_LOCKED_BUCKET"] ?? "etcd-backups-locked"
        return server
    }

    public func configuration(endpoint: String? = nil, credentials: S3Credentials? = nil, trustCA: Bool = true, maxAttempts: Int = 5) throws -> S3Configuration {
        S3Configuration(
            region: region, endpoint: endpoint ?? self.endpoint,
            caBundlePEM: trustCA ? caFile.flatMap { FileManager.default.contents(atPath: $0) }.map(Array.init) : nil,
            credentials: credentials ?? self.credentials, maxAttempts: maxAttempts, retryBaseDelay: .milliseconds(50))
    }

    public func client(endpoint: String? = nil, credentials: S3Credentials? = nil, maxAttempts: Int = 5) throws -> S3Client {
        try S3Client(configuration: configuration(endpoint: endpoint, credentials: credentials, maxAttempts: maxAttempts))
    }

    /// Size and SHA-256 of an object as boto3 reads it; with `saveTo`, boto3 also writes the
    /// object's bytes to that file.
    public func readBack(_ key: String, saveTo file: URL? = nil) async throws -> (size: Int64, sha256: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["AWS_ACCESS_KEY_ID"] = credentials.accessKeyID
        environment["AWS_SECRET_ACCESS_KEY"] = credentials.secretAccessKey
        environment["AWS_DEFAULT_REGION"] = region
        if endpoint.hasPrefix("https"), let caFile { environment["AWS_CA_BUNDLE"] = caFile }
        let result = try await ProcessRunner.run(
            "python3", [repositoryRoot.appendingPathComponent("scripts/s3-read-object.py").path, endpoint, bucket, key] + (file.map { [$0.path] } ?? []),
            environment: environment)
        try #require(result.status == 0, "boto3 could not read back \(key): \(result.stderr)")
        let fields = result.stdout.split(separator: " ")
        return (Int64(fields[0]) ?? -1, fields[1].trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

