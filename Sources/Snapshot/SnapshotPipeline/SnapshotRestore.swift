import Age
import Waiting
import NIOCore
import S3

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
        let storedFacts = StreamFacts(), plainChecks = SnapshotChecks()
        let plain = stored.digested(into: storedFacts).through(try Decoding(encoding, identities: identities))
        for try await chunk in plainChecks.apply(toUnverified: plain) {
            try await sink(chunk)
            progress?(storedFacts.bytesSoFar)
        }
        let snapshot = try plainChecks.result()
        guard let (storedSize, storedSHA256) = storedFacts.digest else {
            throw PipelineFailure(.incomplete, "the stored object's stream ended before its digest")
        }
        let restored = RestoredSnapshot(size: snapshot.size, sha256: snapshot.sha256, storedSize: storedSize,
                                        storedSHA256: storedSHA256, revision: snapshot.revision, totalKeys: snapshot.totalKeys)
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
            return try await decode(body.observed { _ in progressed() }, encoding: encoding, identities: identities,
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
