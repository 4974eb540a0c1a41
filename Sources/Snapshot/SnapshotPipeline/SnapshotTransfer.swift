import Bbolt
import Crypto
import Foundation
import Logging
import NIOCore
import S3
import TalosAPI

/// Moves one etcd snapshot from Talos into object storage, and deletes stored ones. The seam
/// between the backup reconciler and the network: the reconciler decides what and when, this
/// does the transfer.
public protocol SnapshotTransfer: Sendable {
    /// Takes a verified snapshot through `talos`, encodes it as `plan` says, and stores it at
    /// `destination`, never overwriting an object that is not this backup's (`owner` is the
    /// backup's UID). `state`, when given (the control plane's state Secret as a manifest), is
    /// encoded the same way and stored first, beside it (``StoredState``).
    func store(talos: TalosContext, destination: BackupDestination, plan: SnapshotEncodingPlan, owner: String,
               state: [UInt8]?) async throws -> StoredBackup
    /// Deletes the object and the state beside it if this backup (`owner`) stored them, and any
    /// multipart upload left at its key; a missing object is fine, another backup's object is
    /// left alone.
    func delete(_ destination: BackupDestination, owner: String) async throws
    /// Reads the stored object (and the state beside it) back and checks them against
    /// `expected` (``StoredBackupVerification``), calling `pace` with each chunk's size; throws
    /// ``VerificationFailure`` for an object missing, changed or unsound.
    func verify(_ destination: BackupDestination, expected: StoredBackupVerification.Expected,
                pace: @escaping @Sendable (Int) async throws -> Void) async throws -> VerifiedObjects
}

extension SnapshotTransfer {
    /// A snapshot without state (`snapshot --output s3://...`).
    public func store(talos: TalosContext, destination: BackupDestination, plan: SnapshotEncodingPlan, owner: String) async throws -> StoredBackup {
        try await store(talos: talos, destination: destination, plan: plan, owner: owner, state: nil)
    }
}

/// The real transfer: Talos EtcdSnapshot stream -> etcd SHA-256 trailer check -> bbolt
/// structure check -> [zstd] -> [age] -> streaming S3 multipart upload, with no temporary file
/// and memory bounded by the part size (and the structure check's page index, under 4 MiB per
/// GiB). Both checks run on the plain stream and end before the encoder finishes and before
/// the upload completes: a corrupt snapshot (`SnapshotCorrupt`) or one that is not a sound
/// bbolt database (`SnapshotInvalid`) is never stored, encoded or not. The structure gives the
/// revision and total keys recorded with the backup.
///
/// - Once an encoded upload is complete, the object's metadata is replaced by the full record
///   (``StoredBackup``: hashes and sizes of the stored object and of the plain snapshot, the
///   encoding, the recipients' fingerprints): S3 fixes a multipart upload's metadata before
///   its first byte, so those facts can only be written afterwards, by a server-side copy of
///   the object onto itself (``S3Client/replaceMetadata``). A plain snapshot is not copied:
///   it carries its own check (etcd's trailer), and the copy would cost as much server time as
///   the upload (measured: 8 to 13 s per GiB on RGW and moto) and, in a versioned bucket, a
///   second version; an encoded object is about a tenth of the snapshot (zstd on a real one).
/// - Before uploading, an object already at the key is checked. If an earlier attempt of the
///   same backup stored it (its `x-amz-meta-backup-uid` is `owner`: the process died between
///   completing the upload and writing the status), it is read back and checked instead of
///   being uploaded again: a plain snapshot by its etcd trailer, an encoded object against its
///   recorded SHA-256 and size. An encoded object without its record (the process died before
///   writing it) cannot be checked by the operator (it holds no identity), so it is deleted
///   and the snapshot taken again. Any other object is never overwritten (`ObjectExists`).
/// - Multipart uploads left at the key by a killed process are aborted before anything else,
///   so a restart leaves no orphaned parts.
/// - A corrupt or broken snapshot aborts the upload: nothing is stored.
/// - Once stored, the object must still be this attempt's (a HEAD of its attempt id, size and
///   owner), else `ObjectReplaced` (``confirmUnreplaced``).
/// - A stream that moves less than 1 MiB in `stallTimeout` (stops, or trickles) is cancelled
///   and fails (`SnapshotStalled`; ``StallWatchdog``).
public struct TalosToS3Transfer: SnapshotTransfer {
    /// Part size and parallelism: 8 MiB × 2 in flight keeps one backup near 30 MiB of buffers.
    public var partSize: Int
    public var maxConcurrentParts: Int
    public var talosTimeout: Duration
    /// How long the snapshot stream may take to move another MiB, first byte included.
    public var stallTimeout: Duration
    /// Runs once an upload is complete, before the object is checked: tests make a second
    /// writer replace the object there, as a stale replica would.
    var afterCompletion: (@Sendable () async throws -> Void)?
    let logger: Logger

    public init(partSize: Int = 8 * 1024 * 1024, maxConcurrentParts: Int = 2, talosTimeout: Duration = .seconds(30),
                stallTimeout: Duration = .seconds(120), logger: Logger = Logger(label: "snapshot-transfer")) {
        self.partSize = partSize
        self.maxConcurrentParts = maxConcurrentParts
        self.talosTimeout = talosTimeout
        self.stallTimeout = stallTimeout
        self.logger = logger
    }

    private typealias Key = StoredBackup.MetadataKey

    public func store(talos: TalosContext, destination: BackupDestination, plan: SnapshotEncodingPlan, owner: String,
                      state manifest: [UInt8]?) async throws -> StoredBackup {
        try await withS3(destination) { client in
            do {
                var stored = try await store(talos: talos, client: client, destination: destination, plan: plan, owner: owner, state: manifest)
                stored.lockedUntil = try await confirmLocks(stored, client, destination, owner: owner)
                return stored
            } catch let error as S3Error where error.code == "InvalidRequest" && destination.s3.writeSettings.objectLock != nil
                                                && ["PutObject", "CreateMultipartUpload"].contains(error.operation) {
                // What AWS, moto and Ceph RGW answer a locked write into a bucket without
                // Object Lock (a first write: nothing was stored); no retry can change that.
                throw PipelineFailure(.lockNotApplied, "\(error); this is what a store answers when Object Lock is asked of a bucket that was not created with it: create the bucket with Object Lock enabled, or remove objectLock")
            }
        }
    }

    /// ``store(talos:destination:plan:owner:state:)`` up to the objects' Object Lock.
    private func store(talos: TalosContext, client: S3Client, destination: BackupDestination, plan: SnapshotEncodingPlan, owner: String,
                       state manifest: [UInt8]?) async throws -> StoredBackup {
        // First a request whose error carries S3's reason (a HEAD answer has no body), so a
        // wrong secret says SignatureDoesNotMatch rather than just 403.
        try await abortStrayUploads(client, destination)
        // An object at the key first: another's is refused before anything is written
        // beside it; this backup's own (an earlier attempt) comes with the state its
        // record names, never a new one (age encrypts a state differently every time).
        if let existing = try await existingObject(client, destination),
           var adopted = try await adopt(existing, client, destination, owner: owner, found: "already exists") {
            do {
                adopted.state = try await recordedState(existing, client, destination, owner: owner)
                return adopted
            } catch let disagreement as StateDisagrees {
                // Two attempts of this backup each stored a state (one a stale replica's):
                // the snapshot's record names the other. Both objects are this backup's, so
                // the snapshot is taken again, with a state of its own.
                logger.info("this backup's stored object and its state disagree; taking the snapshot again",
                            metadata: ["object": "\(destination.url)", "state": "\(disagreement.description)"])
                try await client.deleteObject(bucket: destination.bucket, key: destination.key)
            }
        }
        // Then the state: a backup is never recorded without the state it was taken with.
        var state: StoredState?
        if let manifest { state = try await storeState(manifest, client, destination, plan: plan, owner: owner) }
        let attempt = UUID().uuidString
        let stored: StoredBackup
        do {
            stored = try await upload(talos: talos, client: client, destination: destination, plan: plan, owner: owner, attempt: attempt,
                                      state: state)
        } catch let error as S3Error where error.kind == .preconditionFailed {
            // Another writer completed the key first (or a retried completion of ours had
            // already succeeded): the object there decides, as before the upload.
            let existing = try await existingObject(client, destination)
            guard var adopted = try await adopt(existing, client, destination, owner: owner, found: "was written during the upload"),
                  let existing else {
                throw error
            }
            do {
                adopted.state = try await recordedState(existing, client, destination, owner: owner)
            } catch let disagreement as StateDisagrees {
                throw PipelineFailure(.objectReplaced, "\(destination.url) was completed by another attempt of this backup whose state disagrees (\(disagreement)); the next attempt takes the snapshot again")
            }
            return adopted
        }
        try await afterCompletion?()
        let written = try await confirmUnreplaced(client, destination, attempt: attempt, size: stored.size, owner: owner)
        try await confirmEncryption(written, client, destination, owner: owner)
        if plan != .plain {
            try await client.replaceMetadata(bucket: destination.bucket, key: destination.key, size: stored.size,
                                             metadata: stored.metadata(owner: owner, attempt: attempt))
            let copied = try await confirmUnreplaced(client, destination, attempt: attempt, size: stored.size, owner: owner)
            try await confirmEncryption(copied, client, destination, owner: owner)
        }
        if let state { try await confirmState(state, client, destination, owner: owner) }
        return stored
    }

    /// With Object Lock asked (`objectLock`), the snapshot and its state must end locked as
    /// asked: the version HEAD finds at each key, once checked to be this backup's, goes through
    /// ``S3Client/lockedVersion(bucket:key:versionID:)``, which sets the retention where the
    /// store did not apply the write's headers. A store that takes neither, a weaker or shorter
    /// lock, or credentials that may not read it (`s3:GetObjectRetention`) leave them not
    /// locked as asked: they are this attempt's, so they are deleted (as far as their lock
    /// allows), and the backup fails, not retried, as for encryption. Returns the latest
    /// retention date the store reports on them, also when only the bucket's default locks
    /// them; nil when nothing is locked.
    private func confirmLocks(_ stored: StoredBackup, _ client: S3Client, _ destination: BackupDestination, owner: String) async throws -> Date? {
        var until: Date?
        for key in [stored.state?.key, destination.key].compactMap({ $0 }) {
            let target = BackupDestination(s3: destination.s3, bucket: destination.bucket, key: key)
            // The version to lock must be this backup's: another writer's (a replica that lost
            // its lease) is never given a retention it cannot undo.
            guard let current = try await existingObject(client, target), current.metadata[Key.owner] == owner else {
                throw PipelineFailure(.objectReplaced, "\(target.url) is not this backup's any more (another writer replaced it, such as an operator replica that lost its lease); it is not recorded as this backup's, and the next attempt checks what is there")
            }
            guard let asked = destination.s3.writeSettings.objectLock else {
                // Nothing to set: the bucket's default retention, if any, as HEAD reports it.
                if let date = current.retainUntilDate, current.isLocked(at: Date()) { until = max(until ?? date, date) }
                continue
            }
            let object: S3ObjectInfo
            do {
                object = try await client.lockedVersion(bucket: destination.bucket, key: key, versionID: current.versionID)
            } catch let error as S3Error where !error.isRetryable {
                // A bucket without Object Lock (moto and RGW take a multipart upload's lock
                // headers there and refuse the retention), or a governance lock that only a
                // bypass could turn into compliance: no retry helps, and the objects are this
                // attempt's.
                try await refuseUnprotected("the store refused to lock \(target.url) as asked (\(asked.mode.rawValue) for \(asked.retention)): \(error)",
                                            client, destination, owner: owner, advice: "Create the bucket with Object Lock enabled, or remove objectLock")
            }
            if !asked.isSatisfied(by: object, at: Date()) {
                let found = object.objectLockMode.map { "\($0.prefix(20)) until \(object.objectLockRetainUntil?.prefix(40) ?? "no date")" }
                    ?? (object.objectLockLegalHold ? "only a legal hold" : "no Object Lock")
                try await refuseUnprotected(
                    "the store took \(target.url) but reports \(found) on it, not \(asked.mode.rawValue) for \(asked.retention) as asked: the bucket was not created with Object Lock, the store does not support it, or the credentials may not read it (s3:GetObjectRetention)",
                    client, destination, owner: owner, advice: "Create the bucket with Object Lock enabled, or remove objectLock")
            }
            if let date = object.retainUntilDate, object.isLocked(at: Date()) { until = max(until ?? date, date) }
        }
        return until
    }

    /// The state the record of this backup's own object names, checked to be there as
    /// recorded (its owner and hash); nil when the record names none. A record that names a
    /// key other than the one beside the object is `recordMismatch`, another backup's object
    /// there `objectExists`; a state of this backup's that is missing or another attempt's
    /// throws ``StateDisagrees``, and the snapshot is taken again: the object cannot be
    /// recorded with a state it was not taken with.
    private func recordedState(_ existing: S3ObjectInfo, _ client: S3Client, _ destination: BackupDestination,
                               owner: String) async throws -> StoredState? {
        guard let state = StoredState(metadata: existing.metadata) else { return nil }
        guard state.key == StoredState.key(besideSnapshot: destination.key) else {
            throw PipelineFailure(.recordMismatch, "\(destination.url)'s record names a state at another key (\(state.key.prefix(300))); it is not recorded as this backup's")
        }
        let target = BackupDestination(s3: destination.s3, bucket: destination.bucket, key: state.key)
        let now = try await existingObject(client, target)
        if let now, now.metadata[Key.owner] != owner {
            throw PipelineFailure(.objectExists, "\(target.url) is not this backup's state; it is never overwritten")
        }
        guard let now, now.metadata[Key.sha256] == state.sha256 else {
            throw StateDisagrees(description: "the state \(target.url) is \(now == nil ? "missing" : "another attempt's")")
        }
        return state
    }

    /// This backup's own snapshot and state disagree (``recordedState``).
    private struct StateDisagrees: Error, CustomStringConvertible {
        var description: String
    }

    /// The state object must be the one this backup stored: there, its owner this backup,
    /// its recorded hash `state`'s (a stale replica's attempt could have replaced it while
    /// this one uploaded the snapshot).
    private func confirmState(_ state: StoredState, _ client: S3Client, _ destination: BackupDestination, owner: String) async throws {
        let target = BackupDestination(s3: destination.s3, bucket: destination.bucket, key: state.key)
        let now = try await existingObject(client, target)
        guard let now, now.metadata[Key.owner] == owner, now.metadata[Key.sha256] == state.sha256 else {
            throw PipelineFailure(.objectReplaced, "the state \(target.url) is \(now == nil ? "missing" : "not the one this backup stored (another writer replaced it)"); it is not recorded as this backup's, and the next attempt checks what is there")
        }
        if let problem = Self.encryptionProblem(now, destination, url: target.url) {
            try await refuseUnprotected(problem, client, destination, owner: owner)
        }
    }


    /// The object at the key must still be the one this attempt wrote: a store that ignores
    /// `If-None-Match` on completion (Ceph RGW) lets a stale writer (a replica that lost its
    /// lease mid-upload) replace it afterwards, and the status must never record hashes the
    /// stored object does not have. A HEAD compares the attempt's identifier (written into the
    /// object's metadata at creation, and again by the record's copy), size and owner; ETags
    /// are not compared, since stores differ in what they answer. A difference is
    /// `ObjectReplaced`, retried: the next attempt checks the object now there as its own or
    /// refuses it as another's (``adopt``). For an encoded object the check runs before the
    /// record is copied on and after. Not seen: a replacement after the last HEAD, or one
    /// between the first HEAD and the copy, which would give the replacement this attempt's
    /// record (`x-amz-copy-source-if-match` would close that gap on AWS, but moto and Ceph RGW
    /// 16 ignore it, so it is not used untested); every restore checks the object against its
    /// record, and `verify` finds such a mismatch.
    @discardableResult
    private func confirmUnreplaced(_ client: S3Client, _ destination: BackupDestination, attempt: String, size: Int64,
                                   owner: String) async throws -> S3ObjectInfo {
        let now = try await existingObject(client, destination)
        guard let now, now.metadata[Key.attempt] == attempt, now.size == size, now.metadata[Key.owner] == owner else {
            let found = now.map { "an object of \($0.size) bytes, owner \($0.metadata[Key.owner].map { String($0.prefix(80)) } ?? "none"), written by \($0.metadata[Key.attempt] == attempt ? "this attempt" : "another attempt or writer")" } ?? "no object"
            throw Self.replaced(destination, found: found, size: size)
        }
        return now
    }

    /// The server-side encryption asked for must be what the store reports on the object: Ceph
    /// RGW 16, for one, takes `x-amz-server-side-encryption: AES256` without a key backend
    /// and stores the object unencrypted. Such an object is deleted (it is this attempt's) and
    /// the backup fails, not retried: a backup the owner believes encrypted at rest must be.
    private func confirmEncryption(_ written: S3ObjectInfo, _ client: S3Client, _ destination: BackupDestination, owner: String) async throws {
        guard let problem = Self.encryptionProblem(written, destination) else { return }
        try await refuseUnprotected(problem, client, destination, owner: owner)
    }

    /// Deletes this attempt's snapshot and state and fails with `problem` (`.encryptionNotApplied`
    /// unless `advice` says what to do about a lock). Whatever the deletes do, the failure is
    /// this one: a retry would find this backup's own object and take it.
    private func refuseUnprotected(_ problem: String, _ client: S3Client, _ destination: BackupDestination, owner: String,
                                   advice: String? = nil) async throws -> Never {
        let left: String
        do {
            try await deleteStored(client, destination, owner: owner)
            left = "the snapshot and its state were deleted\(destination.s3.writeSettings.objectLock == nil ? " (in a versioned bucket, hidden behind a delete marker)" : "")"
        } catch let locked as PipelineFailure where locked.kind == .objectLocked {
            left = "they stay in the store: \(locked.message)"
        } catch {
            left = "deleting the snapshot and its state failed (\(error)): remove them by hand"
        }
        if let advice { throw PipelineFailure(.lockNotApplied, "\(problem); \(left). \(advice)") }
        throw PipelineFailure(.encryptionNotApplied, "\(problem); \(left). Use age encryption (backupStorage.encryption), or a store that applies it")
    }

    /// What is wrong with the server-side encryption the store reports on `object` against
    /// what `destination` asks for; nil when it matches or nothing was asked.
    static func encryptionProblem(_ object: S3ObjectInfo, _ destination: BackupDestination, url: String? = nil) -> String? {
        guard let asked = destination.s3.writeSettings.serverSideEncryption?.mode, object.serverSideEncryption != asked else { return nil }
        return "the store took \(url ?? destination.url) but reports its server-side encryption as \(object.serverSideEncryption ?? "none"), not \(asked) as asked: it does not apply serverSideEncryption (Ceph RGW without a key backend takes AES256 and ignores it)"
    }

    private static func replaced(_ destination: BackupDestination, found: String, size: Int64) -> PipelineFailure {
        PipelineFailure(
            .objectReplaced,
            "\(destination.url) changed right after this attempt stored it (\(found); this attempt wrote \(size) bytes): another writer replaced it, such as an operator replica that lost its lease; it is not recorded as this backup's, and the next attempt checks what is there")
    }

    /// One pass: snapshot stream, trailer check, encoder, upload.
    private func upload(talos: TalosContext, client: S3Client, destination: BackupDestination, plan: SnapshotEncodingPlan,
                        owner: String, attempt: String, state: StoredState?) async throws -> StoredBackup {
        let partSize = self.partSize, maxConcurrentParts = self.maxConcurrentParts, logger = self.logger
        let sseMode = destination.s3.writeSettings.serverSideEncryption?.mode
        let talosClient = TalosClient(context: talos, timeout: talosTimeout)
        return try await StallWatchdog(limit: stallTimeout).run { moved in
            try await talosClient.snapshot { source, stream in
                var uploader = MultipartUploader(
                    client: client, partSize: partSize, maxConcurrentParts: maxConcurrentParts,
                    metadata: StoredBackup.initialMetadata(owner: owner, attempt: attempt, node: source.node, plan: plan, state: state,
                                                           serverSideEncryption: sseMode),
                    logger: logger)
                uploader.onlyIfAbsent = true
                let checks = SnapshotChecks()
                let plain = checks.apply(to: stream).observed(moved)
                let sizeHint = source.status.map { Int64($0.dbSize) }
                guard plan != .plain else {
                    // The trailer check hashes what it releases: that one SHA-256 pass gives
                    // the object's hash, so the uploader does not hash it.
                    uploader.hashesObject = false
                    _ = try await uploader.upload(plain, bucket: destination.bucket, key: destination.key, sizeHint: sizeHint)
                    let snapshot = try checks.result()
                    var stored = StoredBackup(node: source.node, size: snapshot.size, sha256: snapshot.sha256,
                                              revision: snapshot.revision, totalKeys: snapshot.totalKeys, state: state)
                    stored.serverSideEncryption = sseMode
                    return stored
                }
                let result = try await uploader.upload(plain.through(try Encoding(plan)), bucket: destination.bucket, key: destination.key,
                                                       sizeHint: sizeHint)
                let snapshot = try checks.result()
                guard let sha256 = result.sha256 else { throw PipelineFailure(.incomplete, "the upload ended without the object's digest") }
                var stored = StoredBackup(node: source.node, size: result.size, sha256: sha256,
                                          snapshotSize: snapshot.size, snapshotSHA256: snapshot.sha256,
                                          compression: plan.compression, encryptedTo: plan.encryptedTo,
                                          revision: snapshot.revision, totalKeys: snapshot.totalKeys, state: state)
                stored.serverSideEncryption = sseMode
                return stored
            }
        }
    }

    /// An object found at the key: checked and taken as this backup's result if this backup
    /// (`owner`) stored it (an earlier attempt, or a racing one); nil when it was this backup's
    /// unrecorded encoded object, now deleted, so the snapshot is taken again; otherwise never
    /// overwritten.
    private func adopt(_ existing: S3ObjectInfo?, _ client: S3Client, _ destination: BackupDestination, owner: String,
                       found: String) async throws -> StoredBackup? {
        guard let existing, existing.metadata[Key.owner] == owner else {
            throw PipelineFailure(.objectExists, "\(destination.url) \(found) and was not written by this backup; it is never overwritten")
        }
        // This backup's own object from an earlier attempt is only taken when it is encrypted
        // at rest as asked (an attempt may have died before checking it).
        if let problem = Self.encryptionProblem(existing, destination) {
            throw PipelineFailure(.encryptionNotApplied, "\(problem); it is this backup's own object from an earlier attempt, left in place")
        }
        let node = existing.metadata[Key.node] ?? ""
        let encoded = existing.metadata[Key.compression] != nil || existing.metadata[Key.encryptedTo] != nil
        logger.info("object already stored by another attempt of this backup; checking it", metadata: ["object": "\(destination.url)"])
        guard let recorded = StoredBackup(metadata: existing.metadata) else {
            guard !encoded else {
                logger.info("this backup's encoded object has no record of its hashes (the attempt stopped before writing it); taking the snapshot again",
                            metadata: ["object": "\(destination.url)"])
                try await client.deleteObject(bucket: destination.bucket, key: destination.key)
                return nil
            }
            let checked = try await readBack(client, destination, verifyTrailer: true)
            return StoredBackup(node: node, size: checked.size, sha256: checked.sha256,
                                revision: checked.snapshot?.revision, totalKeys: checked.snapshot?.totalKeys)
        }
        let checked = try await readBack(client, destination, verifyTrailer: !encoded)
        guard checked.sha256 == recorded.sha256, checked.size == recorded.size else {
            throw PipelineFailure(
                .recordMismatch,
                "\(destination.url), stored by an earlier attempt of this backup, does not match its record (\(checked.size) bytes, sha256 \(checked.sha256); recorded \(recorded.size) bytes, sha256 \(recorded.sha256))")
        }
        return recorded
    }

    public func delete(_ destination: BackupDestination, owner: String) async throws {
        try await withS3(destination) { client in
            try await abortStrayUploads(client, destination)
            try await deleteStored(client, destination, owner: owner)
        }
    }

    /// Deletes the snapshot at `destination` and the state beside it if this backup (`owner`)
    /// stored them. Under Object Lock (asked for, or reported on the object: a bucket's
    /// default) every version of both keys that this backup wrote is deleted, each by its
    /// version id: a plain delete would only hide the locked bytes behind a delete marker,
    /// for ever. A version still locked is left, and the deletion fails with `.objectLocked`
    /// saying until when; the delete markers go once no other version remains.
    private func deleteStored(_ client: S3Client, _ destination: BackupDestination, owner: String) async throws {
        let existing = try await existingObject(client, destination)
        let stateTarget = BackupDestination(s3: destination.s3, bucket: destination.bucket, key: StoredState.key(besideSnapshot: destination.key))
        // The state too: a failed attempt may have stored only the state.
        let state = try await existingObject(client, stateTarget)
        func reportsLock(_ object: S3ObjectInfo?) -> Bool { object?.objectLockMode != nil || object?.objectLockLegalHold == true }
        guard destination.s3.writeSettings.objectLock != nil || reportsLock(existing) || reportsLock(state) else {
            if let state, state.metadata[Key.owner] == owner { try await client.deleteObject(bucket: stateTarget.bucket, key: stateTarget.key) }
            guard let existing else { return }
            guard existing.metadata[Key.owner] == owner else {
                logger.info("not deleting an object this backup did not store", metadata: ["object": "\(destination.url)"])
                return
            }
            try await client.deleteObject(bucket: destination.bucket, key: destination.key)
            return
        }
        var locked: [(url: String, object: S3ObjectInfo)] = []
        for target in [stateTarget, destination] {
            locked += try await deleteVersions(client, target, owner: owner).map { (target.url, $0) }
        }
        guard !locked.isEmpty else { return }
        let latest = locked.map(\.object).max { ($0.retainUntilDate ?? .distantFuture) < ($1.retainUntilDate ?? .distantFuture) }
        let held = locked.contains { $0.object.objectLockLegalHold }
        let date = String(latest?.objectLockRetainUntil?.prefix(40) ?? "")
        let until = held ? "under a legal hold" : latest?.retainUntilDate != nil ? "until \(date)" : "until a date that cannot be read (\(date))"
        let mode = locked.compactMap(\.object.objectLockMode).first.map { " (\($0.prefix(20)))" } ?? ""
        throw PipelineFailure(.objectLocked, "S3 Object Lock\(mode) keeps \(Set(locked.map(\.url)).sorted().joined(separator: " and ")) from deletion \(until); the store refuses to delete \(locked.count == 1 ? "it" : "them") before then, and the operator never bypasses a lock")
    }

    /// The most versions of one key a deletion looks at.
    static let maximumVersionsPerKey = 1_000

    /// Deletes every version of `target`'s key that this backup (`owner`) wrote and that no
    /// lock holds; returns the locked ones. Delete markers go too, once no version is left.
    private func deleteVersions(_ client: S3Client, _ target: BackupDestination, owner: String) async throws -> [S3ObjectInfo] {
        // A backup writes two or three versions of a key (and a few more over retried
        // attempts): a store that lists thousands is not answering about this backup.
        let versions = try await { () async throws in
            do {
                return try await client.objectVersions(bucket: target.bucket, key: target.key, limit: Self.maximumVersionsPerKey)
            } catch let error as S3Error where error.code == "ListingTooLong" {
                throw PipelineFailure(.objectExists, "\(target.url) has more than the \(Self.maximumVersionsPerKey) versions a backup could have written; none is deleted")
            }
        }()
        var locked: [S3ObjectInfo] = [], others = 0
        for version in versions where !version.isDeleteMarker {
            // An unversioned bucket lists its object as version `null`, which moto refuses as a
            // version id: there the object itself is meant. (An Object Lock bucket is versioned
            // from its creation, so it has no such version.)
            let id = version.versionID == "null" ? nil : version.versionID
            let object: S3ObjectInfo
            do {
                object = try await client.headObject(bucket: target.bucket, key: target.key, versionID: id)
            } catch let error as S3Error where error.kind == .noSuchKey {
                continue  // gone meanwhile
            }
            guard object.metadata[Key.owner] == owner else {
                others += 1
                continue
            }
            if object.isLocked(at: Date()) {
                locked.append(object)
                continue
            }
            try await client.deleteObject(bucket: target.bucket, key: target.key, versionID: id)
        }
        if locked.isEmpty && others == 0 {
            for marker in versions where marker.isDeleteMarker {
                try await client.deleteObject(bucket: target.bucket, key: target.key, versionID: marker.versionID)
            }
        }
        if others > 0 {
            logger.info("left versions this backup did not store", metadata: ["object": "\(target.url)", "versions": "\(others)"])
        }
        return locked
    }

    public func verify(_ destination: BackupDestination, expected: StoredBackupVerification.Expected,
                       pace: @escaping @Sendable (Int) async throws -> Void) async throws -> VerifiedObjects {
        try await withS3(destination) { client in
            try await StoredBackupVerification.verify(destination, with: client, expected: expected, stallTimeout: stallTimeout, pace: pace)
        }
    }

    /// Encodes the state manifest as the snapshot is (in memory: a Secret is at most 1 MiB)
    /// and stores it beside the snapshot's key, replacing only an object this backup stored.
    private func storeState(_ manifest: [UInt8], _ client: S3Client, _ destination: BackupDestination, plan: SnapshotEncodingPlan,
                            owner: String) async throws -> StoredState {
        let target = BackupDestination(s3: destination.s3, bucket: destination.bucket, key: StoredState.key(besideSnapshot: destination.key))
        let encoder = try SnapshotEncoder(compressionLevel: plan.compressionLevel, recipients: plan.recipients)
        let stored = try encoder.encode(manifest) + encoder.finish()
        let sha256 = SigV4Signer.hex(SHA256.hash(data: stored))
        let existing = try await existingObject(client, target)
        if let existing, existing.metadata[Key.owner] != owner {
            throw PipelineFailure(.objectExists, "\(target.url) already exists and was not written by this backup; it is never overwritten")
        }
        // Only into an empty key, unless it holds this backup's own (an attempt whose snapshot
        // never completed); confirmed after the snapshot's upload (``confirmState``).
        _ = try await client.putObject(bucket: target.bucket, key: target.key, body: ByteBuffer(bytes: stored),
                                       metadata: [Key.owner: owner, Key.sha256: sha256], ifNoneMatch: existing == nil)
        let state = StoredState(key: target.key, sha256: sha256)
        try await confirmState(state, client, destination, owner: owner)
        return state
    }

    /// Aborts multipart uploads at the destination's key (left by a process that was killed).
    private func abortStrayUploads(_ client: S3Client, _ destination: BackupDestination) async throws {
        for stray in try await client.multipartUploads(bucket: destination.bucket, key: destination.key) {
            try await client.abortMultipartUpload(bucket: destination.bucket, key: destination.key, uploadID: stray.uploadID)
            logger.info("aborted a multipart upload left by an earlier attempt", metadata: ["object": "\(destination.url)"])
        }
    }

    private func withS3<T: Sendable>(_ destination: BackupDestination, _ body: (S3Client) async throws -> T) async throws -> T {
        try await S3Client.withClient(destination.s3, logger: logger, body)
    }

    private func existingObject(_ client: S3Client, _ destination: BackupDestination) async throws -> S3ObjectInfo? {
        do {
            return try await client.headObject(bucket: destination.bucket, key: destination.key)
        } catch let error as S3Error where error.kind == .noSuchKey {
            return nil
        }
    }

    /// Reads a stored object back, hashing it; a plain snapshot also passes the same checks a
    /// fresh one does (``SnapshotChecks``; its revision and key count are returned). The
    /// download has the same stall bound as a snapshot stream.
    private func readBack(_ client: S3Client, _ destination: BackupDestination,
                          verifyTrailer: Bool) async throws -> (size: Int64, sha256: String, snapshot: CheckedSnapshot?) {
        try await StallWatchdog(limit: stallTimeout).run { moved in
            let (_, body) = try await client.getObject(bucket: destination.bucket, key: destination.key)
            guard verifyTrailer else {
                let facts = StreamFacts()
                for try await _ in body.observed(moved).digested(into: facts) {}
                guard let (size, sha256) = facts.digest else { throw PipelineFailure(.incomplete, "the download ended before its digest") }
                return (size, sha256, nil)
            }
            let checks = SnapshotChecks()
            for try await _ in checks.apply(toUnverified: body.observed(moved)) {}
            let snapshot = try checks.result()
            return (snapshot.size, snapshot.sha256, snapshot)
        }
    }
}
