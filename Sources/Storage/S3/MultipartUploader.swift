import Crypto
import DequeModule
import Foundation
import Logging
import NIOCore

/// What an upload stored.
public struct S3UploadResult: Sendable, Equatable {
    public var bucket: String
    public var key: String
    public var size: Int64
    /// 0 when the object went up as one PutObject.
    public var partCount: Int
    public var etag: String
    /// Hex SHA-256 of every byte uploaded; nil when the uploader was told not to hash
    /// (``MultipartUploader/hashesObject``: the caller hashes the bytes already).
    public var sha256: String?
    /// Part buffers the upload created: at most parts in flight + 2 (more only if part sizes
    /// grew past 1,000 parts).
    public var partBuffers: Int
}

/// Streams bytes of unknown total length into one S3 object with bounded memory.
///
/// - Parts are 16 MiB by default. The part size doubles every 1,000 parts (capped at 4 GiB),
///   so 10,000 parts cover more than 5 TiB without knowing the size up front; a `sizeHint`
///   raises the first part size so that 10,000 parts cover it, up to 64 MiB (a hint is not
///   trusted with memory).
/// - At most `maxConcurrentParts` parts are in flight (4 by default), and their buffers are
///   reused: an upload holds at most in-flight parts + 2 buffers, whatever the object's size
///   (no process-wide allocator setting needed: the same few buffers carry every part).
/// - An object smaller than one part goes up as a single PutObject.
/// - Every part's SHA-256 is computed once and serves twice: as the SigV4 payload hash and as
///   `x-amz-checksum-sha256`, which S3 verifies on arrival. The object's own SHA-256 is the
///   only other pass over the bytes.
/// - A failed part is retried by the client (backoff with jitter on throttling, 5xx and dropped
///   connections); a final failure or cancellation aborts the multipart upload, so no parts are
///   left behind and no partial object appears, and the cause is rethrown.
public struct MultipartUploader: Sendable {
    public static let defaultPartSize = 16 * 1024 * 1024
    public static let minimumPartSize = 5 * 1024 * 1024
    public static let maximumPartSize = 4 * 1024 * 1024 * 1024
    public static let maximumParts = 10_000

    public let client: S3Client
    public var partSize: Int
    public var maxConcurrentParts: Int
    public var metadata: [String: String]
    /// Whether the upload computes the object's SHA-256 (``S3UploadResult/sha256``). A caller
    /// that hashes the same bytes on the way in turns it off, so each byte is hashed once for
    /// the object (and once more per part, for the signature and checksum).
    public var hashesObject = true
    /// Parts an upload may have: S3's limit, 10,000 (lowered only by tests of the limit).
    public var partLimit = maximumParts
    /// Write the object only if none exists at the key (`If-None-Match: *` on the final
    /// PutObject or CompleteMultipartUpload): of two writers of one key, one fails with
    /// PreconditionFailed, where the store supports conditional writes.
    public var onlyIfAbsent = false
    private let logger: Logger

    public init(client: S3Client, partSize: Int = defaultPartSize, maxConcurrentParts: Int = 4, metadata: [String: String] = [:], logger: Logger = Logger(label: "s3-upload")) {
        self.client = client
        self.partSize = max(partSize, Self.minimumPartSize)
        self.maxConcurrentParts = max(1, maxConcurrentParts)
        self.metadata = metadata
        self.logger = logger
    }

    /// The most a size hint may raise the first part to: a hint comes from outside (a Talos
    /// node's EtcdStatus) and may be wrong or hostile, so it can cost at most (in-flight parts
    /// + 2) buffers of this size. Doubling every 1,000 parts from here covers far more than S3's
    /// 5 TiB object limit.
    public static let maximumHintedPartSize = 64 * 1024 * 1024

    /// The first part's size: `partSize`, raised when `sizeHint` (bytes expected) would need
    /// more than 10,000 parts of it, up to ``maximumHintedPartSize``. Any hint is safe here
    /// (negative, zero, `Int64.max`): nothing traps.
    public static func firstPartSize(partSize: Int, sizeHint: Int64?) -> Int {
        guard let sizeHint, sizeHint > 0 else { return partSize }
        let needed = sizeHint / Int64(maximumParts) + (sizeHint % Int64(maximumParts) == 0 ? 0 : 1)
        return max(partSize, Int(min(needed, Int64(maximumHintedPartSize))))
    }

    /// Size of part `number` (from 1) for a first part size of `base`.
    public static func partSize(number: Int, base: Int) -> Int {
        let doublings = min((number - 1) / 1000, 30)
        return min(base << doublings, max(base, maximumPartSize))
    }

    /// Uploads `chunks` to `bucket/key`.
    public func upload<Chunks: AsyncSequence>(
        _ chunks: Chunks, bucket: String, key: String, sizeHint: Int64? = nil
    ) async throws -> S3UploadResult where Chunks.Element == ByteBuffer {
        let base = Self.firstPartSize(partSize: partSize, sizeHint: sizeHint)
        var hasher: SHA256? = hashesObject ? SHA256() : nil
        var size: Int64 = 0
        var partNumber = 1
        var pool = PartBuffers()
        var buffer = pool.take(capacity: Self.partSize(number: 1, base: base))
        var uploadID: String?

        do {
            return try await withThrowingTaskGroup(of: FinishedPart.self) { group in
                var inFlight = 0
                var parts: [S3Client.UploadedPart] = []

                func collect(_ done: inout FinishedPart) {
                    parts.append(done.uploaded)
                    pool.giveBack(&done.buffer)
                    inFlight -= 1
                }

                func send(_ part: ByteBuffer, number: Int) async throws {
                    // Checked for every part, the last one included.
                    guard number <= partLimit else {
                        throw S3Error(code: "TooManyParts", message: "more than \(partLimit) parts", statusCode: 0,
                                      operation: "UploadPart", bucket: bucket, key: key, region: client.configuration.region)
                    }
                    if uploadID == nil {
                        uploadID = try await client.createMultipartUpload(bucket: bucket, key: key, metadata: metadata)
                    }
                    if inFlight >= maxConcurrentParts, var done = try await group.next() {
                        collect(&done)
                    }
                    let id = uploadID!
                    group.addTask { [client] in
                        let uploaded = try await client.uploadPart(bucket: bucket, key: key, uploadID: id, partNumber: number, body: part)
                        return FinishedPart(uploaded: uploaded, buffer: part)
                    }
                    inFlight += 1
                }

                for try await chunk in chunks {
                    var chunk = chunk
                    size += Int64(chunk.readableBytes)
                    if hasher != nil { chunk.withUnsafeReadableBytes { hasher!.update(bufferPointer: $0) } }
                    while chunk.readableBytes > 0 {
                        let target = Self.partSize(number: partNumber, base: base)
                        if buffer.capacity < target { pool.grow(&buffer, to: target) }
                        let take = min(chunk.readableBytes, target - buffer.readableBytes)
                        var slice = chunk.readSlice(length: take)!
                        buffer.writeBuffer(&slice)
                        if buffer.readableBytes == target {
                            // The part goes to its task; this loop keeps no reference to it,
                            // and takes the next buffer only once a slot is free (send waits).
                            let full = buffer
                            buffer = ByteBuffer()
                            try await send(full, number: partNumber)
                            partNumber += 1
                            buffer = pool.take(capacity: Self.partSize(number: partNumber, base: base))
                        }
                    }
                }
                let digest = hasher.map { SigV4Signer.hex($0.finalize()) }

                guard uploadID != nil else {
                    // Smaller than one part: a single PutObject.
                    let etag = try await client.putObject(bucket: bucket, key: key, body: buffer, metadata: metadata, ifNoneMatch: onlyIfAbsent)
                    return S3UploadResult(bucket: bucket, key: key, size: size, partCount: 0, etag: etag, sha256: digest,
                                          partBuffers: pool.storagesCreated)
                }
                if buffer.readableBytes > 0 {
                    try await send(buffer, number: partNumber)
                }
                while var done = try await group.next() { collect(&done) }
                let etag = try await client.completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID!, parts: parts, ifNoneMatch: onlyIfAbsent)
                return S3UploadResult(bucket: bucket, key: key, size: size, partCount: parts.count, etag: etag, sha256: digest,
                                      partBuffers: pool.storagesCreated)
            }
        } catch {
            if let uploadID { await abort(bucket: bucket, key: key, uploadID: uploadID, cause: error) }
            throw error
        }
    }

    /// Aborts the upload even when the caller was cancelled (that is how a shutdown arrives),
    /// and also any other upload left for the same key by a retried CreateMultipartUpload.
    private func abort(bucket: String, key: String, uploadID: String, cause: any Error) async {
        let client = self.client
        let logger = self.logger
        await Task {
            do {
                try await client.abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID)
                logger.info("aborted multipart upload", metadata: ["key": "\(key)", "cause": "\(cause)"])
            } catch {
                logger.error("could not abort multipart upload; its parts remain until a bucket lifecycle rule removes them",
                             metadata: ["key": "\(key)", "uploadID": "\(uploadID)", "error": "\(error)"])
            }
            do {
                for stray in try await client.multipartUploads(bucket: bucket, key: key) {
                    try await client.abortMultipartUpload(bucket: bucket, key: key, uploadID: stray.uploadID)
                    logger.info("aborted a stray multipart upload of the same key", metadata: ["key": "\(key)"])
                }
            } catch {
                logger.warning("could not check for stray multipart uploads of the key", metadata: ["key": "\(key)", "error": "\(error)"])
            }
        }.value
    }
}

/// An uploaded part and its buffer, handed back for the next part.
struct FinishedPart: Sendable {
    var uploaded: S3Client.UploadedPart
    var buffer: ByteBuffer?
}

/// The part buffers of one upload: a buffer whose part went up is filled again with a later
/// part, so an upload holds at most parts in flight + 2 of them. A returned buffer rests while
/// one more part goes up before it is reused: the HTTP client lets go of a part's bytes a
/// moment after the answer arrives, and a buffer reused before that would be copied (a fresh
/// allocation each time, which fragments the heap). The pool counts the storages it had to
/// create, copies included, so a test can check the bound.
struct PartBuffers {
    private var returned = Deque<ByteBuffer>()
    private(set) var storagesCreated = 0

    mutating func take(capacity: Int) -> ByteBuffer {
        if returned.count >= 2, var reused = returned.popFirst() {
            let before = Self.storageAddress(of: reused)
            reused.clear()
            // Writable access copies the storage if another reference to it still exists.
            if reused.withUnsafeMutableWritableBytes({ UInt(bitPattern: $0.baseAddress) }) != before { storagesCreated += 1 }
            if reused.capacity < capacity { grow(&reused, to: capacity) }
            return reused
        }
        storagesCreated += 1
        return ByteBufferAllocator().buffer(capacity: capacity)
    }

    /// Takes `buffer` out of `slot` (leaving no other reference here) for a later part.
    mutating func giveBack(_ slot: inout ByteBuffer?) {
        guard let buffer = slot.take() else { return }
        returned.append(buffer)
    }

    mutating func grow(_ buffer: inout ByteBuffer, to capacity: Int) {
        buffer.reserveCapacity(capacity)
        storagesCreated += 1
    }

    private static func storageAddress(of buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } - UInt(buffer.readerIndex)
    }
}
