import Foundation
import NIOCore
import S3
import S3TestSupport
import TestSupport
import Testing

/// S3 Object Lock on moto and Ceph RGW 16: every write (a put, a multipart upload, both kinds of
/// metadata copy) ends locked (both apply the lock headers of PutObject only: the others get
/// their retention set afterwards, ``S3Client/lockedVersion(bucket:key:)``), HEAD reports it,
/// each version is listed, a delete of a locked version is refused, a plain delete only hides
/// the object, and once the lock expires every version can be deleted. Locks here last
/// seconds, so their expiry is real. moto runs without authentication here: its signature
/// check refuses a ListObjectVersions whose prefix holds a `/` (so does its ListObjectsV2),
/// even boto3's.
@Suite("S3 Object Lock")
struct ObjectLockTests {
    @Test("locked writes, refused deletes, deletion after expiry", arguments: ["NOAUTH", "RGW"], [1_000, 2 * MultipartUploader.minimumPartSize + 3])
    func lockedVersions(serverName: String, length: Int) async throws {
        let server = try S3TestServer.named(serverName).lockedBucket
        var configuration = try server.configuration()
        let lock = S3WriteSettings.ObjectLock(mode: .governance, retention: .seconds(6))
        configuration.writeSettings = S3WriteSettings(objectLock: lock)
        let client = try S3Client(configuration: configuration)
        defer { Task { try? await client.shutdown() } }
        let key = uniqueKey("locked-\(length).db")
        let started = Date()
        if length < MultipartUploader.minimumPartSize {
            try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(repeating: 1, count: length), metadata: ["backup-uid": "u"])
        } else {
            let uploader = MultipartUploader(client: client, partSize: MultipartUploader.minimumPartSize, metadata: ["backup-uid": "u"])
            _ = try await uploader.upload(GeneratedBytes(length: length, seed: 9), bucket: server.bucket, key: key)
        }
        var locked = try await client.lockedVersion(bucket: server.bucket, key: key)
        #expect(locked.isLocked(at: Date()), "\(locked)")
        // Both copies onto itself: CopyObject, and UploadPartCopy in parts.
        for partSize in [Int64(1) << 30, Int64(MultipartUploader.minimumPartSize)] {
            try await client.replaceMetadata(bucket: server.bucket, key: key, size: Int64(length), metadata: ["backup-uid": "u"], partSize: partSize)
            locked = try await client.lockedVersion(bucket: server.bucket, key: key)
            #expect(locked.isLocked(at: Date()), "after the copy in parts of \(partSize): \(locked)")
        }
        let versions = try await client.objectVersions(bucket: server.bucket, key: key)
        #expect(versions.count == 3 && versions.allSatisfy { !$0.isDeleteMarker }, "the upload and two copies: \(versions)")
        var latest = Date.distantPast
        for version in versions {
            let head = try await client.headObject(bucket: server.bucket, key: key, versionID: version.versionID)
            #expect(head.versionID == version.versionID)
            #expect(head.objectLockMode == "GOVERNANCE", "\(head)")
            let until = try #require(head.retainUntilDate, "retain-until \(head.objectLockRetainUntil ?? "missing")")
            #expect(until > started && until <= Date().addingTimeInterval(7), "\(until)")
            #expect(head.isLocked(at: Date()))
            latest = max(latest, until)
            let refused = await s3Error { try await client.deleteObject(bucket: server.bucket, key: key, versionID: version.versionID) }
            #expect(refused?.kind == .accessDenied, "a locked version cannot be deleted: \(String(describing: refused))")
        }
        // Without a version: a delete marker hides the object, and every version stays.
        try await client.deleteObject(bucket: server.bucket, key: key)
        let hidden = try await client.objectVersions(bucket: server.bucket, key: key)
        #expect(hidden.filter(\.isDeleteMarker).count == 1 && hidden.count == 4, "\(hidden)")
        // Once the lock has expired (by the store's clock too), each version can go.
        try await Task.sleep(for: .seconds(max(0, latest.timeIntervalSinceNow) + 1.5))
        for version in hidden {
            try await client.deleteObject(bucket: server.bucket, key: key, versionID: version.versionID)
        }
        #expect(try await client.objectVersions(bucket: server.bucket, key: key).isEmpty)
    }

    @Test("a locked write to a bucket without Object Lock is refused", arguments: ["AUTH", "RGW"])
    func bucketWithoutLock(serverName: String) async throws {
        let server = try S3TestServer.named(serverName)
        var configuration = try server.configuration()
        configuration.writeSettings = S3WriteSettings(objectLock: .init(mode: .compliance, retainDays: 1))
        let client = try S3Client(configuration: configuration)
        defer { Task { try? await client.shutdown() } }
        let key = uniqueKey("unlockable.db")
        let refused = await s3Error { try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(repeating: 2, count: 10)) }
        #expect(refused?.statusCode == 400, "\(String(describing: refused))")
        let absent = await s3Error { _ = try await client.headObject(bucket: server.bucket, key: key) }
        #expect(absent?.kind == .noSuchKey, "nothing was stored: \(String(describing: absent))")
    }
}
