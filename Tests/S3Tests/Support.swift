import Crypto
import Foundation
import NIOCore
import S3
import TestSupport
import Testing


/// The S3 servers `scripts/test` starts (scripts/s3-test-services.py), from the environment.
struct S3TestServer: Sendable {
    var endpoint: String
    var credentials: S3Credentials
    var region: String
    var bucket: String
    var caFile: String?

    /// `name` is AUTH, NOAUTH or TLS.
    static func named(_ name: String) throws -> S3TestServer {
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

    func configuration(endpoint: String? = nil, credentials: S3Credentials? = nil, trustCA: Bool = true, maxAttempts: Int = 5) throws -> S3Configuration {
        S3Configuration(
            region: region, endpoint: endpoint ?? self.endpoint,
            caBundlePEM: trustCA ? caFile.flatMap { FileManager.default.contents(atPath: $0) }.map(Array.init) : nil,
            credentials: credentials ?? self.credentials, maxAttempts: maxAttempts, retryBaseDelay: .milliseconds(50))
    }

    func client(endpoint: String? = nil, credentials: S3Credentials? = nil, maxAttempts: Int = 5) throws -> S3Client {
        try S3Client(configuration: configuration(endpoint: endpoint, credentials: credentials, maxAttempts: maxAttempts))
    }

    /// Size and SHA-256 of an object as boto3 reads it.
    func readBack(_ key: String) async throws -> (size: Int64, sha256: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["AWS_ACCESS_KEY_ID"] = credentials.accessKeyID
        environment["AWS_SECRET_ACCESS_KEY"] = credentials.secretAccessKey
        environment["AWS_DEFAULT_REGION"] = region
        if endpoint.hasPrefix("https"), let caFile { environment["AWS_CA_BUNDLE"] = caFile }
        let result = try await ProcessRunner.run(
            "python3", [repositoryRoot.appendingPathComponent("scripts/s3-read-object.py").path, endpoint, bucket, key],
            environment: environment)
        try #require(result.status == 0, "boto3 could not read back \(key): \(result.stderr)")
        let fields = result.stdout.split(separator: " ")
        return (Int64(fields[0]) ?? -1, fields[1].trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Deterministic pseudo-random bytes of a given length, in chunks of varying size, as a
/// stream; also tells the SHA-256 the bytes should have.
struct GeneratedBytes: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let length: Int
    let seed: UInt64
    let chunkSize: Int

    init(length: Int, seed: UInt64 = 1, chunkSize: Int = 1_048_576 + 7) {
        self.length = length
        self.seed = seed
        self.chunkSize = chunkSize
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: Int
        var state: UInt64
        let chunkSize: Int

        mutating func next() async throws -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            // Generating is CPU work on the cooperative pool (one thread per core): give other
            // tests' tasks (timers among them) a turn between chunks.
            await Task.yield()
            try Task.checkCancellation()
            let count = Swift.min(chunkSize, remaining)
            remaining -= count
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
                var index = 0
                while index < count {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    var word = state
                    for _ in 0..<8 where index < count {
                        pointer[index] = UInt8(truncatingIfNeeded: word >> 56)
                        word <<= 8
                        index += 1
                    }
                }
                return count
            }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(remaining: length, state: seed, chunkSize: chunkSize)
    }

    /// The SHA-256 of all the bytes, computed by generating them again.
    func sha256() async throws -> String {
        var hasher = SHA256()
        for try await chunk in self { chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// A key no other test uses.
func uniqueKey(_ name: String) -> String { "tests/\(UUID().uuidString.lowercased())/\(name)" }

/// The S3Error `body` throws, or nil.
func s3Error(_ body: () async throws -> Void) async -> S3Error? {
    await TestHelpers.caught(S3Error.self, body)
}
