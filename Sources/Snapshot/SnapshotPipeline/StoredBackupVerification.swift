import Bbolt
import NIOCore
import S3
import Crypto
import TalosAPI
import Waiting

/// What a verification found wrong with a stored backup's objects: one is missing, one differs
/// from the record, or a plain snapshot is no longer sound (etcd's trailer, the bbolt
/// structure). The message names the object and the fact.
public struct VerificationFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case missing, changed, invalid
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// What a verification read.
public struct VerifiedObjects: Sendable, Equatable {
    public var size: Int64
    public var sha256: String
    /// For a plain snapshot: what its bbolt structure holds.
    public var revision: Int64?
    public var totalKeys: Int64?
    /// Whether a state object was checked beside it.
    public var stateChecked: Bool
}

/// A stored backup's objects read back and checked against what its status records, without
/// any key: the snapshot object's size and SHA-256 (streamed, never held); for a plain
/// snapshot also etcd's trailer, the bbolt structure, the revision and key count; and the state
/// object's SHA-256 (at most ``StateRestore/maximumSize``). An encrypted object is checked as
/// stored bytes: decrypting it needs an identity the operator never holds (`verify` does that).
/// `pace` is called with each chunk's size before the next is read (a ``BandwidthLimit``).
/// An object of another size than recorded is `changed` without being read, and none is read
/// past its recorded size; a download that moves less than 1 MiB in `stallTimeout` fails
/// (``StallWatchdog``).
public enum StoredBackupVerification {
    /// The facts a record gives; `sha256` nil for an adopted plain object without a record
    /// (its trailer checks it).
    public struct Expected: Sendable {
        public var size: Int64?
        public var sha256: String?
        public var revision: Int64?
        public var totalKeys: Int64?
        public var state: StoredState?

        public init(size: Int64?, sha256: String?, revision: Int64?, totalKeys: Int64?, state: StoredState?) {
            self.size = size
            self.sha256 = sha256
            self.revision = revision
            self.totalKeys = totalKeys
            self.state = state
        }
    }

    public static func verify(
        _ destination: BackupDestination, with client: S3Client, expected: Expected, stallTimeout: Duration = .seconds(120),
        pace: (@Sendable (Int) async throws -> Void)? = nil
    ) async throws -> VerifiedObjects {
        let plain = SnapshotEncoding(fileName: destination.key) == SnapshotEncoding(compressed: false, encrypted: false)
        let facts = StreamFacts(), checks = SnapshotChecks()
        do {
            // Less than 1 MiB in `stallTimeout` (nothing, or a trickle) fails, as a backup's stream does.
            try await StallWatchdog(limit: stallTimeout).run { moved in
                let (length, body) = try await missingAsFailure(destination) { try await client.getObject(bucket: destination.bucket, key: destination.key) }
                // Another size is another object: said at once, never read to its end.
                if let length, let size = expected.size, length != size {
                    throw VerificationFailure(.changed, "\(destination.url) changed since it was stored: its size is \(length), the backup recorded \(size)")
                }
                let stored = body.observed(moved).digested(into: facts)
                var read: Int64 = 0
                func take(_ chunk: ByteBuffer) async throws {
                    read += Int64(chunk.readableBytes)
                    if let size = expected.size, read > size {
                        throw VerificationFailure(.changed, "\(destination.url) changed since it was stored: it is larger than the \(size) bytes the backup recorded")
                    }
                    try await pace?(chunk.readableBytes)
                }
                if plain {
                    for try await chunk in checks.apply(toUnverified: stored) { try await take(chunk) }
                } else {
                    for try await chunk in stored { try await take(chunk) }
                }
            }
        } catch let error as SnapshotCorrupt {
            throw VerificationFailure(.invalid, "\(destination.url) is not a sound etcd snapshot any more: \(error)")
        } catch let error as BboltInvalid {
            throw VerificationFailure(.invalid, "\(destination.url) is not a sound etcd snapshot any more: \(error)")
        }
        guard let (size, sha256) = facts.digest else {
            throw PipelineFailure(.incomplete, "the stored object's stream ended before its digest")
        }
        var compared: [(String, String?, String)] = [("size", expected.size.map { String($0) }, String(size)),
                                                     ("SHA-256", expected.sha256?.lowercased(), sha256)]
        var verified = VerifiedObjects(size: size, sha256: sha256, stateChecked: false)
        if plain {
            let snapshot = try checks.result()
            verified.revision = snapshot.revision
            verified.totalKeys = snapshot.totalKeys
            compared.append(("etcd revision", expected.revision.map { String($0) }, String(snapshot.revision)))
            compared.append(("total key count", expected.totalKeys.map { String($0) }, String(snapshot.totalKeys)))
        }
        for (what, recorded, found) in compared {
            if let recorded, recorded != found {
                throw VerificationFailure(.changed, "\(destination.url) changed since it was stored: its \(what) is \(found), the backup recorded \(recorded)")
            }
        }
        if let state = expected.state {
            let target = BackupDestination(s3: destination.s3, bucket: destination.bucket, key: state.key)
            let stored = try await missingAsFailure(target) { try await StateRestore.storedBytes(target, with: client, stallTimeout: stallTimeout) }
            try await pace?(stored.count)
            let found = SigV4Signer.hex(SHA256.hash(data: stored))
            guard found == state.sha256.lowercased() else {
                throw VerificationFailure(.changed, "the state \(target.url) changed since it was stored: its SHA-256 is \(found), the backup recorded \(state.sha256)")
            }
            verified.stateChecked = true
        }
        return verified
    }

    private static func missingAsFailure<T>(_ destination: BackupDestination, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as S3Error where error.kind == .noSuchKey {
            throw VerificationFailure(.missing, "\(destination.url) is missing from the store (NoSuchKey)")
        }
    }
}
