import Crypto
import Foundation
import Logging
import NIOCore
import S3
import TalosAPI

/// Where one backup's object goes, with everything needed to reach the store.
public struct BackupDestination: Sendable {
    public var s3: S3Configuration
    public var bucket: String
    public var key: String

    public init(s3: S3Configuration, bucket: String, key: String) {
        self.s3 = s3
        self.bucket = bucket
        self.key = key
    }

    public var url: String { "s3://\(bucket)/\(key)" }

    /// `<prefix>/<namespace>/<controlplane>/<backup-name>.db` (DESIGN.md section 1).
    public static func objectKey(prefix: String, namespace: String, controlPlane: String, backupName: String) -> String {
        let trimmed = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return (trimmed.isEmpty ? "" : trimmed + "/") + "\(namespace)/\(controlPlane)/\(backupName).db"
    }
}

/// What a stored backup is.
public struct StoredBackup: Sendable, Equatable {
    public var node: String
    public var size: Int64
    /// Hex SHA-256 of the stored object.
    public var sha256: String

    public init(node: String, size: Int64, sha256: String) {
        self.node = node
        self.size = size
        self.sha256 = sha256
    }
}

/// Moves one etcd snapshot from Talos into object storage, and deletes stored ones. The seam
/// between the backup reconciler and the network: the reconciler decides what and when, this
/// does the transfer.
public protocol SnapshotTransfer: Sendable {
    /// Takes a verified snapshot through `talos` and stores it at `destination`, never
    /// overwriting an object that is not this backup's (`owner` is the backup's UID).
    func store(talos: TalosContext, destination: BackupDestination, owner: String) async throws -> StoredBackup
    /// Deletes the object if this backup (`owner`) stored it, and any multipart upload left at
    /// its key; a missing object is fine, another backup's object is left alone.
    func delete(_ destination: BackupDestination, owner: String) async throws
}

/// The real transfer: Talos EtcdSnapshot stream -> etcd SHA-256 trailer check -> streaming S3
/// multipart upload, with no temporary file and memory bounded by the part size.
///
/// - Before uploading, an object already at the key is checked: if an earlier attempt of the
///   same backup stored it (its `x-amz-meta-backup-uid` is `owner`: the process died between
///   completing the upload and writing the status), it is read back and verified instead of
///   being uploaded again; any other object is never overwritten (`ObjectExists`).
/// - Multipart uploads left at the key by a killed process are aborted before anything else,
///   so a restart leaves no orphaned parts.
/// - A corrupt or broken snapshot aborts the upload: nothing is stored.
/// - A stream that stops moving for `stallTimeout` is cancelled and fails (`SnapshotStalled`).
public struct TalosToS3Transfer: SnapshotTransfer {
    /// Part size and parallelism: 8 MiB × 2 in flight keeps one backup near 30 MiB of buffers.
    public var partSize: Int
    public var maxConcurrentParts: Int
    public var talosTimeout: Duration
    /// How long the snapshot stream may go without a new chunk, first byte included.
    public var stallTimeout: Duration
    let logger: Logger

    public init(partSize: Int = 8 * 1024 * 1024, maxConcurrentParts: Int = 2, talosTimeout: Duration = .seconds(30),
                stallTimeout: Duration = .seconds(120), logger: Logger = Logger(label: "snapshot-transfer")) {
        self.partSize = partSize
        self.maxConcurrentParts = maxConcurrentParts
        self.talosTimeout = talosTimeout
        self.stallTimeout = stallTimeout
        self.logger = logger
    }

    static let ownerMetadataKey = "backup-uid"
    static let nodeMetadataKey = "talos-node"

    public func store(talos: TalosContext, destination: BackupDestination, owner: String) async throws -> StoredBackup {
        try await withS3(destination) { client in
            // First a request whose error carries S3's reason (a HEAD answer has no body), so a
            // wrong secret says SignatureDoesNotMatch rather than just 403.
            try await abortStrayUploads(client, destination)
            if let existing = try await existingObject(client, destination) {
                return try await adopt(existing, client, destination, owner: owner, found: "already exists")
            }
            let partSize = self.partSize, maxConcurrentParts = self.maxConcurrentParts, logger = self.logger
            let talosClient = TalosClient(context: talos, timeout: talosTimeout)
            do {
                return try await StallWatchdog(limit: stallTimeout).run { progressed in
                    try await talosClient.snapshot { source, stream in
                        var uploader = MultipartUploader(
                            client: client, partSize: partSize, maxConcurrentParts: maxConcurrentParts,
                            metadata: [Self.ownerMetadataKey: owner, Self.nodeMetadataKey: source.node], logger: logger)
                        uploader.onlyIfAbsent = true
                        // The stream hashes what it releases while checking the trailer: one
                        // SHA-256 pass gives the object's hash, so the uploader does not hash it.
                        uploader.hashesObject = false
                        let digest = SnapshotDigest()
                        let result = try await uploader.upload(
                            ObservedChunks(base: stream.reportingDigest(to: digest), observe: progressed),
                            bucket: destination.bucket, key: destination.key, sizeHint: source.status.map { Int64($0.dbSize) })
                        guard let sha256 = digest.sha256 else {
                            throw BackupFailure(reason: BackupFailure.Reason.internalError, message: "the snapshot stream ended without its digest")
                        }
                        return StoredBackup(node: source.node, size: result.size, sha256: SigV4Signer.hex(sha256))
                    }
                }
            } catch let error as S3Error where error.kind == .preconditionFailed {
                // Another writer completed the key first (or a retried completion of ours had
                // already succeeded): the object there decides, as before the upload.
                return try await adopt(try await existingObject(client, destination), client, destination, owner: owner,
                                       found: "was written during the upload")
            }
        }
    }

    /// An object found at the key: verified and taken as this backup's result if this backup
    /// (`owner`) stored it (an earlier attempt, or a racing one); otherwise never overwritten.
    private func adopt(_ existing: S3ObjectInfo?, _ client: S3Client, _ destination: BackupDestination, owner: String,
                       found: String) async throws -> StoredBackup {
        guard let existing, existing.metadata[Self.ownerMetadataKey] == owner else {
            throw BackupFailure(
                reason: BackupFailure.Reason.objectExists,
                message: "\(destination.url) \(found) and was not written by this backup; it is never overwritten",
                retryable: false)
        }
        logger.info("object already stored by another attempt of this backup; verifying it", metadata: ["object": "\(destination.url)"])
        return try await verifyStored(client, destination, node: existing.metadata[Self.nodeMetadataKey] ?? "")
    }

    public func delete(_ destination: BackupDestination, owner: String) async throws {
        try await withS3(destination) { client in
            try await abortStrayUploads(client, destination)
            guard let existing = try await existingObject(client, destination) else { return }
            guard existing.metadata[Self.ownerMetadataKey] == owner else {
                logger.info("not deleting an object this backup did not store", metadata: ["object": "\(destination.url)"])
                return
            }
            try await client.deleteObject(bucket: destination.bucket, key: destination.key)
        }
    }

    /// Aborts multipart uploads at the destination's key (left by a process that was killed).
    private func abortStrayUploads(_ client: S3Client, _ destination: BackupDestination) async throws {
        for stray in try await client.multipartUploads(bucket: destination.bucket, key: destination.key) {
            try await client.abortMultipartUpload(bucket: destination.bucket, key: destination.key, uploadID: stray.uploadID)
            logger.info("aborted a multipart upload left by an earlier attempt", metadata: ["object": "\(destination.url)"])
        }
    }

    private func withS3<T: Sendable>(_ destination: BackupDestination, _ body: (S3Client) async throws -> T) async throws -> T {
        let client = try S3Client(configuration: destination.s3, logger: logger)
        do {
            let result = try await body(client)
            try? await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func existingObject(_ client: S3Client, _ destination: BackupDestination) async throws -> S3ObjectInfo? {
        do {
            return try await client.headObject(bucket: destination.bucket, key: destination.key)
        } catch let error as S3Error where error.kind == .noSuchKey {
            return nil
        }
    }

    /// Reads a stored snapshot back through the same trailer check a fresh one passes.
    /// The download has the same stall bound as a snapshot stream.
    private func verifyStored(_ client: S3Client, _ destination: BackupDestination, node: String) async throws -> StoredBackup {
        try await StallWatchdog(limit: stallTimeout).run { progressed in
            let (_, body) = try await client.getObject(bucket: destination.bucket, key: destination.key)
            var hasher = SHA256()
            var size: Int64 = 0
            for try await chunk in VerifiedSnapshotStream(ObservedChunks(base: body, observe: progressed)) {
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                size += Int64(chunk.readableBytes)
            }
            return StoredBackup(node: node, size: size, sha256: SigV4Signer.hex(hasher.finalize()))
        }
    }
}
