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
/// the object, and once the lock expires every version can be deleted (a lock of seconds, so
/// its expiry is real). moto runs without authentication here: its signature
/// check refuses a ListObjectVersions whose prefix holds a `/` (so does its ListObjectsV2),
/// even boto3's.
@Suite("S3 Object Lock")
struct ObjectLockTests {
    @Test("locked writes, refused deletes, deletion after expiry", arguments: ["NOAUTH", "RGW"], [1_000, 2 * MultipartUploader.minimumPartSize + 3])
    func lockedVersions(serverName: String, length: Int) async throws {
        let server = try S3TestServer.named(serverName).lockedBucket
        // A lock of a day, to check what it refuses whatever the machine's load; then one of
        // two seconds, to delete every version once it has expired.
        for (retention, expires) in [(Duration.seconds(86_400), false), (.seconds(2), true)] {
            var configuration = try server.configuration()
            configuration.writeSettings = S3WriteSettings(objectLock: .init(mode: .governance, retention: retention))
            let client = try S3Client(configuration: configuration)
            defer { Task { try? await client.shutdown() } }
            let key = uniqueKey("locked-\(length).db")
            if length < MultipartUploader.minimumPartSize {
                try await client.putObject(bucket: server.bucket, key: key, body: ByteBuffer(repeating: 1, count: length), metadata: ["backup-uid": "u"])
            } else {
                let uploader = MultipartUploader(client: client, partSize: MultipartUploader.minimumPartSize, metadata: ["backup-uid": "u"])
                _ = try await uploader.upload(GeneratedBytes(length: length, seed: 9), bucket: server.bucket, key: key)
            }
            var written = [try await client.lockedVersion(bucket: server.bucket, key: key)]
            // Both copies onto itself: CopyObject, and UploadPartCopy in parts.
            for partSize in [Int64(1) << 30, Int64(MultipartUploader.minimumPartSize)] {
                try await client.replaceMetadata(bucket: server.bucket, key: key, size: Int64(length), metadata: ["backup-uid": "u"], partSize: partSize)
                written.append(try await client.lockedVersion(bucket: server.bucket, key: key))
            }
            for object in written {
                #expect(object.objectLockMode == "GOVERNANCE" && object.retainUntilDate != nil, "every write ends locked: \(object)")
            }
            let versions = try await client.objectVersions(bucket: server.bucket, key: key)
            #expect(versions.count == 3 && versions.allSatisfy { !$0.isDeleteMarker }, "the upload and two copies: \(versions)")
            #expect(Set(versions.map(\.versionID)) == Set(written.compactMap(\.versionID)), "each write is its own version")
            guard expires else {
                for version in versions {
                    let head = try await client.headObject(bucket: server.bucket, key: key, versionID: version.versionID)
                    #expect(head.versionID == version.versionID && head.isLocked(at: Date().addingTimeInterval(3_600)), "\(head)")
                    let refused = await s3Error { try await client.deleteObject(bucket: server.bucket, key: key, versionID: version.versionID) }
                    #expect(refused?.kind == .accessDenied, "a locked version cannot be deleted: \(String(describing: refused))")
                }
                // Without a version: a delete marker hides the object, and every version stays.
                try await client.deleteObject(bucket: server.bucket, key: key)
                let hidden = try await client.objectVersions(bucket: server.bucket, key: key)
                #expect(hidden.filter(\.isDeleteMarker).count == 1 && hidden.count == 4, "\(hidden)")
                continue
            }
            // Once the lock has expired (by the store's clock too), each version can go.
            let latest = written.compactMap(\.retainUntilDate).max() ?? Date()
            try await Task.sleep(for: .seconds(max(0, latest.timeIntervalSinceNow) + 1.5))
            for version in versions {
                try await client.deleteObject(bucket: server.bucket, key: key, versionID: version.versionID)
            }
            #expect(try await client.objectVersions(bucket: server.bucket, key: key).isEmpty)
        }
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
