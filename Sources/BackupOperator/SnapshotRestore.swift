import Age
import Bbolt
import Crypto
import Deadline
import NIOCore
import S3
import Synchronization
import TalosAPI

/// What a restore produced, and what it read.
public struct RestoredSnapshot: Sendable, Equatable {
    /// Size and hex SHA-256 of the plain snapshot written.
    public var size: Int64
    public var sha256: String
    /// Size and hex SHA-256 of the stored object read.
    public var storedSize: Int64
    public var storedSHA256: String
    /// The etcd revision and total keys, read from the snapshot's bbolt structure.
    public var revision: Int64
    public var totalKeys: Int64
}

/// The bytes read or written do not match the backup's record.
public struct RestoreMismatch: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which fact: "stored object SHA-256", "snapshot size", ...
    public var what: String
    public var recorded: String
    public var found: String

    public var description: String {
        "the \(what) does not match the backup's record (recorded \(recorded), found \(found)): the object was altered, replaced or cut short"
    }
}

/// The way back from a stored object to the plain etcd snapshot `talosctl bootstrap
/// --recover-from` takes, streaming and in bounded memory: the stored bytes are hashed and
/// counted as they arrive, decrypted (only authenticated bytes come out), decompressed, and the
/// plain stream passes etcd's SHA-256 trailer check and the bbolt structure check on its way to
/// `sink`. When the stream has ended, the stored object's size and SHA-256, the snapshot's, and
/// the revision and total keys are compared with the backup's `record` (its status, or its
/// object's metadata); any difference throws ``RestoreMismatch``, a structure that does not
/// check out ``BboltInvalid``. The caller keeps what `sink` received only when this returns
/// (a temporary file renamed, a recovery upload completed): age's authentication and etcd's
/// trailer reject damage chunk by chunk, the recorded hashes reject a whole object that was
/// swapped.
public enum SnapshotRestore {
    public static func decode<Stored: AsyncSequence & Sendable>(
        _ stored: Stored, encoding: SnapshotEncoding, identities: [AgeIdentity], record: StoredBackup?,
        progress: ((_ storedBytes: Int64) -> Void)? = nil, into sink: (ByteBuffer) async throws -> Void
    ) async throws -> RestoredSnapshot where Stored.Element == ByteBuffer {
        let decoded = try DecodedChunks(stored, decoder: SnapshotDecoder(encoding, identities: identities))
        let structure = SnapshotStructure()
        var hasher = SHA256()
        var size: Int64 = 0
        for try await chunk in StructureCheckedChunks(VerifiedSnapshotStream(decoded), reportingTo: structure) {
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            size += Int64(chunk.readableBytes)
            try await sink(chunk)
            progress?(decoded.storedDigest.result.size)
        }
        let (storedSize, storedSHA256) = decoded.storedDigest.result
        guard let summary = structure.summary else { throw BboltInvalid("the structure check did not finish") }
        let restored = RestoredSnapshot(size: size, sha256: SigV4Signer.hex(hasher.finalize()), storedSize: storedSize,
                                        storedSHA256: storedSHA256, revision: summary.revision, totalKeys: summary.totalKeys)
        guard let record else { return restored }
        let plainIsStored = record.snapshotSHA256 == nil
        var checks: [(String, String, String)] = [
            ("stored object size", String(record.size), String(restored.storedSize)),
            ("stored object SHA-256", record.sha256, restored.storedSHA256),
            ("snapshot size", String(record.snapshotSize ?? (plainIsStored ? record.size : restored.size)), String(restored.size)),
            ("snapshot SHA-256", record.snapshotSHA256 ?? (plainIsStored ? record.sha256 : restored.sha256), restored.sha256),
        ]
        // A record written before revisions were read has none: nothing to compare.
        if let revision = record.revision { checks.append(("etcd revision", String(revision), String(restored.revision))) }
        if let keys = record.totalKeys { checks.append(("total key count", String(keys), String(restored.totalKeys))) }
        for (what, recorded, found) in checks where recorded != found {
            throw RestoreMismatch(what: what, recorded: recorded, found: found)
        }
        return restored
    }
}

/// The plain snapshot's bytes from a stored object's: each stored chunk is hashed and counted,
/// then decoded (``SnapshotDecoder``) into pieces of bounded size, whatever the compression
/// ratio; the decoder's end checks run when the stored stream ends, so a cut-short object is
/// an error, never a short snapshot.
/// Iterated once, by one task (the decoder is not shared).
struct DecodedChunks<Base: AsyncSequence & Sendable>: AsyncSequence, @unchecked Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let decoder: SnapshotDecoder
    let storedDigest = StoredDigest()

    init(_ base: Base, decoder: SnapshotDecoder) {
        self.base = base
        self.decoder = decoder
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let decoder: SnapshotDecoder
        let storedDigest: StoredDigest
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            while true {
                if let piece = try decoder.nextPiece() { return ByteBuffer(bytes: piece) }
                if finished { return nil }
                guard let chunk = try await base.next() else {
                    finished = true
                    storedDigest.finish()
                    try decoder.endOfInput()
                    continue
                }
                storedDigest.update(chunk)
                try decoder.feed(chunk.readableBytesView)
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), decoder: decoder, storedDigest: storedDigest)
    }
}

/// Size and SHA-256 of the stored bytes, computed on the way through ``DecodedChunks``.
final class StoredDigest: Sendable {
    private let state = Mutex<(hasher: SHA256, size: Int64, hex: String?)>((SHA256(), 0, nil))

    func update(_ chunk: ByteBuffer) {
        state.withLock { state in
            chunk.withUnsafeReadableBytes { state.hasher.update(bufferPointer: $0) }
            state.size += Int64(chunk.readableBytes)
        }
    }

    func finish() { state.withLock { $0.hex = SigV4Signer.hex($0.hasher.finalize()) } }

    var result: (size: Int64, sha256: String) { state.withLock { ($0.size, $0.hex ?? "") } }
}

extension SnapshotRestore {
    /// ``decode(_:encoding:identities:record:progress:into:)`` of the object at `destination`,
    /// downloaded as it is decoded. A download that delivers nothing for `stallTimeout` is
    /// cancelled and fails; a missing object is S3's NoSuchKey.
    public static func download(
        _ destination: BackupDestination, with client: S3Client, encoding: SnapshotEncoding, identities: [AgeIdentity],
        record: StoredBackup?, stallTimeout: Duration = .seconds(120),
        progress: (@Sendable (_ storedBytes: Int64) -> Void)? = nil, into sink: @escaping @Sendable (ByteBuffer) async throws -> Void
    ) async throws -> RestoredSnapshot {
        try await withIdleTimeout(stallTimeout, idle: { idle in
            DownloadStalled(object: destination.url, seconds: idle.components.seconds)
        }) { progressed in
            let (_, body) = try await client.getObject(bucket: destination.bucket, key: destination.key)
            return try await decode(ObservedChunks(base: body, observe: { _ in progressed() }), encoding: encoding, identities: identities,
                                    record: record, progress: progress, into: sink)
        }
    }
}

/// A download delivered nothing for too long.
public struct DownloadStalled: Error, Sendable, CustomStringConvertible {
    public var object: String
    public var seconds: Int64
    public var description: String { "the download of \(object) delivered no data for \(seconds) s and was cancelled" }
}
