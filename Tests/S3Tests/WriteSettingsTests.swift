import Crypto
import Foundation
import NIOCore
import S3
import S3TestSupport
import TestSupport
import Testing

/// Server-side encryption and storage class on every write: PutObject, a multipart upload, and
/// the copy that replaces an object's metadata (a copy takes the bucket's defaults unless told),
/// as the store reports them on HEAD.
@Suite("S3 write settings: server-side encryption and storage class")
struct WriteSettingsTests {
    /// What HEAD says of `key`, with and without the settings.
    static func settings(_ client: S3Client, _ bucket: String, _ key: String) async throws -> (sse: String?, kmsKey: String?, storageClass: String?) {
        let head = try await client.headObject(bucket: bucket, key: key)
        return (head.serverSideEncryption, head.kmsKeyID, head.storageClass)
    }

    @Test("moto: SSE-S3 and STANDARD_IA, SSE-KMS with a key, on a small put, a multipart upload and both metadata copies",
          arguments: [1_000, 2 * MultipartUploader.minimumPartSize + 3])
    func moto(length: Int) async throws {
        let server = try S3TestServer.named("AUTH")
        for (settings, expected) in [
            (S3WriteSettings(serverSideEncryption: .aes256, storageClass: "STANDARD_IA"), ("AES256", nil as String?, "STANDARD_IA" as String?)),
            (S3WriteSettings(serverSideEncryption: .kms(keyID: "alias/etcd-backups")), ("aws:kms", "alias/etcd-backups", nil)),
        ] {
            var configuration = try server.configuration()
            configuration.writeSettings = settings
            let client = try S3Client(configuration: configuration)
            let key = uniqueKey("settings-\(length).db")
            let uploader = MultipartUploader(client: client, partSize: MultipartUploader.minimumPartSize, metadata: ["backup-uid": "u"])
            let stored = try await uploader.upload(GeneratedBytes(length: length, seed: 3), bucket: server.bucket, key: key)
            var found = try await Self.settings(client, server.bucket, key)
            #expect(found.sse == expected.0 && found.kmsKey.map { $0.hasSuffix(expected.1 ?? "") } ?? (expected.1 == nil), "\(found)")
            #expect(found.storageClass == expected.2, "\(found)")
            for partSize in [Int64(1) << 30, Int64(MultipartUploader.minimumPartSize)] {
                try await client.replaceMetadata(bucket: server.bucket, key: key, size: stored.size, metadata: ["backup-uid": "v"], partSize: partSize)
                found = try await Self.settings(client, server.bucket, key)
                #expect(found.sse == expected.0 && found.storageClass == expected.2, "after the copy (part size \(partSize)): \(found)")
            }
            #expect(try await server.readBack(key).sha256 == stored.sha256, "the bytes are unchanged")
            try await client.deleteObject(bucket: server.bucket, key: key)
            try await client.shutdown()
        }
    }

    @Test("SSE-C on Ceph RGW: every write, part, completion (with part checksums) copy and read carries the key; without it nothing can be read",
          arguments: [1_000, 2 * MultipartUploader.minimumPartSize + 3])
    func customerKey(length: Int) async throws {
        let server = try S3TestServer.named("RGW")
        let key = try #require(S3WriteSettings.CustomerKey(Array(repeating: 7, count: 32)))
        var configuration = try server.configuration()
        configuration.writeSettings = S3WriteSettings(serverSideEncryption: .customerKey(key))
        var other = configuration
        other.writeSettings = S3WriteSettings(serverSideEncryption: .customerKey(try #require(S3WriteSettings.CustomerKey(Array(repeating: 8, count: 32)))))
        let client = try S3Client(configuration: configuration), plain = try server.client(), wrong = try S3Client(configuration: other)
        let objectKey = uniqueKey("sse-c-\(length).db")
        do {
            let uploader = MultipartUploader(client: client, partSize: MultipartUploader.minimumPartSize, metadata: ["backup-uid": "u"])
            let stored = try await uploader.upload(GeneratedBytes(length: length, seed: 5), bucket: server.bucket, key: objectKey)
            #expect(try await client.headObject(bucket: server.bucket, key: objectKey).serverSideEncryption == "SSE-C")
            // The record's copy onto itself, in parts whatever the size (RGW 16 answers CopyObject
            // of an SSE-C object NotImplemented): the source's key and the destination's.
            for (partSize, uid) in [(Int64(1) << 30, "v"), (Int64(MultipartUploader.minimumPartSize), "w")] {
                try await client.replaceMetadata(bucket: server.bucket, key: objectKey, size: stored.size, metadata: ["backup-uid": uid], partSize: partSize)
                #expect(try await client.headObject(bucket: server.bucket, key: objectKey).metadata["backup-uid"] == uid)
            }
            let (_, body) = try await client.getObject(bucket: server.bucket, key: objectKey)
            var digest = SHA256()
            for try await chunk in body { digest.update(data: Data(chunk.readableBytesView)) }
            #expect(digest.finalize().map { String(format: "%02x", $0) }.joined() == stored.sha256, "the bytes come back with the key")
            // Without the key, or with another: the store refuses, and nothing is read.
            let withoutKey = await s3Error { _ = try await plain.headObject(bucket: server.bucket, key: objectKey) }
            #expect(withoutKey?.statusCode == 400, "\(String(describing: withoutKey))")
            let wrongKey = await s3Error { _ = try await wrong.headObject(bucket: server.bucket, key: objectKey) }
            #expect(wrongKey?.statusCode == 400, "RGW answers a wrong key as it answers none: \(String(describing: wrongKey))")
            #expect("\(key)" == "CustomerKey(<redacted>)")
        } catch {
            try? await plain.deleteObject(bucket: server.bucket, key: objectKey)
            for client in [client, plain, wrong] { try? await client.shutdown() }
            throw error
        }
        try await plain.deleteObject(bucket: server.bucket, key: objectKey)
        for client in [client, plain, wrong] { try await client.shutdown() }
    }

    @Test("without settings nothing is asked: the bucket's defaults (no SSE header, STANDARD)")
    func none() async throws {
        let server = try S3TestServer.named("AUTH")
        let client = try server.client()
        let key = uniqueKey("plain.db")
        _ = try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(string: "plain"))
        let found = try await Self.settings(client, server.bucket, key)
        #expect(found.sse == nil && found.storageClass == nil, "\(found)")
        try await client.deleteObject(bucket: server.bucket, key: key)
        try await client.shutdown()
    }

    @Test("Ceph RGW 16 without a KMS backend or placement targets: refuses SSE-KMS and STANDARD_IA with S3's error, takes STANDARD, and takes AES256 but stores the object unencrypted (what the transfer then refuses)")
    func rgwRefuses() async throws {
        let server = try S3TestServer.named("RGW")
        for (settings, code) in [(S3WriteSettings(serverSideEncryption: .kms(keyID: "k")), "InvalidArgument"),
                                 (S3WriteSettings(storageClass: "STANDARD_IA"), "InvalidArgument")] {
            var configuration = try server.configuration()
            configuration.writeSettings = settings
            let client = try S3Client(configuration: configuration)
            let key = uniqueKey("refused.db")
            let refused = await s3Error { _ = try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(string: "x")) }
            #expect(refused?.code == code, "\(settings): \(String(describing: refused))")
            #expect(await s3Error { _ = try await client.headObject(bucket: server.bucket, key: key) }?.kind == .noSuchKey, "nothing stored")
            try await client.shutdown()
        }
        for (settings, reported) in [(S3WriteSettings(storageClass: "STANDARD"), (sse: nil as String?, storageClass: "STANDARD" as String?)),
                                     (S3WriteSettings(serverSideEncryption: .aes256), (sse: nil, storageClass: nil))] {
            var configuration = try server.configuration()
            configuration.writeSettings = settings
            let client = try S3Client(configuration: configuration)
            let key = uniqueKey("taken.db")
            _ = try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(string: "x"))
            let head = try await client.headObject(bucket: server.bucket, key: key)
            #expect(head.serverSideEncryption == reported.sse && head.storageClass == reported.storageClass, "\(settings): \(head)")
            try await client.deleteObject(bucket: server.bucket, key: key)
            try await client.shutdown()
        }
    }
}
