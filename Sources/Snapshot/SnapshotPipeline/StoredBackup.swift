import Foundation
import S3

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

    /// `<prefix>/<namespace>/<controlplane>/<backup-name>.db`, then `.zst` when compressed and
    /// `.age` when encrypted (docs/design.md, Names, labels and ownership).
    public static func objectKey(prefix: String, namespace: String, controlPlane: String, backupName: String,
                                 encoding: SnapshotEncoding = SnapshotEncoding(compressed: false, encrypted: false)) -> String {
        keyPrefix(prefix: prefix, namespace: namespace, controlPlane: controlPlane) + backupName + encoding.fileExtension
    }

    /// `<prefix>/<namespace>/<controlplane>/`: where a control plane's backups in a namespace go.
    public static func keyPrefix(prefix: String, namespace: String, controlPlane: String) -> String {
        let trimmed = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return (trimmed.isEmpty ? "" : trimmed + "/") + "\(namespace)/\(controlPlane)/"
    }
}

/// What a stored backup is: what its status records, and what its object's `x-amz-meta-*`
/// metadata repeats, so that a bucket alone is enough to restore.
public struct StoredBackup: Sendable, Equatable {
    public var node: String
    /// Size and hex SHA-256 of the stored object.
    public var size: Int64
    public var sha256: String
    /// Size and hex SHA-256 of the plain snapshot; nil when the object is the plain snapshot.
    public var snapshotSize: Int64?
    public var snapshotSHA256: String?
    /// `zstd` when compressed.
    public var compression: String?
    /// Fingerprints of the age recipients when encrypted.
    public var encryptedTo: [String]?
    /// The etcd revision and total keys read from the snapshot's bbolt structure; nil in a
    /// record that predates them.
    public var revision: Int64?
    public var totalKeys: Int64?
    /// The control plane's state stored beside the snapshot (``StoredState``); nil when there
    /// was none.
    public var state: StoredState?
    /// The server-side encryption the object was written with (`AES256`, `aws:kms`, `SSE-C`);
    /// nil: the bucket's default. Never a key.
    public var serverSideEncryption: String?
    /// Until when S3 Object Lock holds the stored objects (the latest retention date the
    /// store reports on them); nil when they are not locked. A fact of the store, not of the
    /// record: never written into the metadata.
    public var lockedUntil: Date?

    public init(node: String, size: Int64, sha256: String, snapshotSize: Int64? = nil, snapshotSHA256: String? = nil,
                compression: String? = nil, encryptedTo: [String]? = nil, revision: Int64? = nil, totalKeys: Int64? = nil,
                state: StoredState? = nil) {
        self.state = state
        self.node = node
        self.size = size
        self.sha256 = sha256
        self.snapshotSize = snapshotSize
        self.snapshotSHA256 = snapshotSHA256
        self.compression = compression
        self.encryptedTo = encryptedTo
        self.revision = revision
        self.totalKeys = totalKeys
    }

    /// The metadata keys (after `x-amz-meta-`).
    public enum MetadataKey {
        public static let owner = "backup-uid"
        public static let node = "talos-node"
        public static let size = "size"
        public static let sha256 = "sha256"
        public static let snapshotSize = "snapshot-size"
        public static let snapshotSHA256 = "snapshot-sha256"
        public static let compression = "compression"
        public static let encryptedTo = "encrypted-to"
        public static let serverSideEncryption = "server-side-encryption"
        public static let revision = "etcd-revision"
        public static let totalKeys = "etcd-total-keys"
        /// The state object beside the snapshot: its key and hex SHA-256.
        public static let stateKey = "state-key"
        public static let stateSHA256 = "state-sha256"
        /// A random identifier of the attempt that wrote the object: what tells, after the
        /// upload, that the object there is still this attempt's (``TalosToS3Transfer``).
        public static let attempt = "attempt-id"
    }

    /// What is known when an upload starts: who stores it, from which node, and how it is encoded.
    static func initialMetadata(owner: String, attempt: String, node: String, plan: SnapshotEncodingPlan, state: StoredState?,
                                serverSideEncryption: String?) -> [String: String] {
        var metadata = [MetadataKey.owner: owner, MetadataKey.node: node, MetadataKey.attempt: attempt]
        metadata[MetadataKey.serverSideEncryption] = serverSideEncryption
        metadata[MetadataKey.stateKey] = state?.key
        metadata[MetadataKey.stateSHA256] = state?.sha256
        metadata[MetadataKey.compression] = plan.compression
        metadata[MetadataKey.encryptedTo] = plan.encryptedTo?.joined(separator: ",")
        return metadata
    }

    /// The full record, written once the upload is complete (`owner`: the backup's UID;
    /// `attempt`: the identifier of the attempt that wrote it).
    public func metadata(owner: String, attempt: String? = nil) -> [String: String] {
        var metadata = [MetadataKey.owner: owner, MetadataKey.node: node, MetadataKey.size: String(size), MetadataKey.sha256: sha256]
        metadata[MetadataKey.attempt] = attempt
        metadata[MetadataKey.snapshotSize] = snapshotSize.map { String($0) }
        metadata[MetadataKey.snapshotSHA256] = snapshotSHA256
        metadata[MetadataKey.compression] = compression
        metadata[MetadataKey.encryptedTo] = encryptedTo?.joined(separator: ",")
        metadata[MetadataKey.revision] = revision.map { String($0) }
        metadata[MetadataKey.totalKeys] = totalKeys.map { String($0) }
        metadata[MetadataKey.stateKey] = state?.key
        metadata[MetadataKey.stateSHA256] = state?.sha256
        metadata[MetadataKey.serverSideEncryption] = serverSideEncryption
        return metadata
    }

    /// The record in an object's metadata; nil unless it is complete (the upload's process
    /// may have died before writing it).
    public init?(metadata: [String: String]) {
        guard let sizeText = metadata[MetadataKey.size], let size = Int64(sizeText),
              let sha256 = metadata[MetadataKey.sha256] else { return nil }
        self.init(node: metadata[MetadataKey.node] ?? "", size: size, sha256: sha256,
                  snapshotSize: metadata[MetadataKey.snapshotSize].flatMap { Int64($0) },
                  snapshotSHA256: metadata[MetadataKey.snapshotSHA256],
                  compression: metadata[MetadataKey.compression],
                  encryptedTo: metadata[MetadataKey.encryptedTo].map { $0.split(separator: ",").map(String.init) },
                  revision: metadata[MetadataKey.revision].flatMap { Int64($0) },
                  totalKeys: metadata[MetadataKey.totalKeys].flatMap { Int64($0) },
                  state: StoredState(metadata: metadata))
        serverSideEncryption = metadata[MetadataKey.serverSideEncryption]
        if (self.compression != nil || self.encryptedTo != nil) && (snapshotSize == nil || snapshotSHA256 == nil) { return nil }
    }
}

/// The control plane's state as stored beside a snapshot: its object key (the snapshot's with
/// `.state.yaml` in place of `.db`, then `.zst` and `.age` as the snapshot has them) and the
/// hex SHA-256 of the stored bytes.
public struct StoredState: Sendable, Equatable {
    public var key: String
    public var sha256: String

    public init(key: String, sha256: String) {
        self.key = key
        self.sha256 = sha256
    }

    /// The state an object's metadata names (a plain snapshot's metadata names it too, though
    /// it carries no full record); nil when it names none, or no SHA-256 (64 lowercase hex
    /// digits, as the status's schema requires).
    public init?(metadata: [String: String]) {
        guard let key = metadata[StoredBackup.MetadataKey.stateKey], let sha256 = metadata[StoredBackup.MetadataKey.stateSHA256],
              sha256.utf8.count == 64, sha256.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        self.init(key: key, sha256: sha256)
    }

    /// Where the state of the snapshot stored at `objectKey` goes: `.../NAME.db[.zst][.age]`
    /// gives `.../NAME.state.yaml[.zst][.age]`.
    public static func key(besideSnapshot objectKey: String) -> String {
        let encoding = SnapshotEncoding(fileName: objectKey)
        var base = Substring(objectKey)
        if encoding.encrypted { base = base.dropLast(".age".count) }
        if encoding.compressed { base = base.dropLast(".zst".count) }
        if base.hasSuffix(".db") { base = base.dropLast(".db".count) }
        return base + ".state.yaml" + (encoding.compressed ? ".zst" : "") + (encoding.encrypted ? ".age" : "")
    }

    /// The backup name of a state key (`.../NAME.state.yaml[.zst][.age]` gives `NAME`); nil
    /// for any other key.
    public static func backupName(ofStateKey key: String) -> String? {
        let encoding = SnapshotEncoding(fileName: key)
        var base = Substring(key.split(separator: "/", omittingEmptySubsequences: false).last ?? "")
        if encoding.encrypted { base = base.dropLast(".age".count) }
        if encoding.compressed { base = base.dropLast(".zst".count) }
        guard base.hasSuffix(".state.yaml") else { return nil }
        let name = base.dropLast(".state.yaml".count)
        return name.isEmpty ? nil : String(name)
    }
}
