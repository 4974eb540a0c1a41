import Age
import ArgumentParser
import BackupResolution
import ControlPlaneState
import CustomResources
import Foundation
import KubernetesClient
import Logging
import NIOCore
import S3
import SnapshotPipeline

/// Where `restore`, `verify` and `recover` read a stored backup from: a TalosEtcdBackup
/// resource, an `s3://` object, or a downloaded file, with the age identity an encrypted one
/// needs. The one home for turning those options into something to read.
struct BackupSourceOptions: ParsableArguments {
    /// What the commands' help says about their sources and checks.
    static let discussion = """
        Give exactly one source. --backup NAME reads the TalosEtcdBackup's status (bucket, \
        key, hashes, revision) and its S3 settings and credentials (the Secrets its spec names) \
        through the kubeconfig; --schedule NAME --latest reads the newest Succeeded backup of \
        that TalosEtcdBackupSchedule (a drill). --from s3://BUCKET/KEY reads the object's x-amz-meta-* record \
        (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). --from FILE reads a \
        downloaded object. The key's or file's name says what was done: NAME.db, NAME.db.zst \
        (zstd), NAME.db.age (age), NAME.db.zst.age (both). An encrypted backup needs \
        --identity, an age identity file (AGE-SECRET-KEY-1... lines, as age-keygen writes). \
        The object is streamed through the checks: age authenticates every chunk, etcd's \
        SHA-256 trailer and the snapshot's bbolt structure (meta pages, B+trees) are checked, \
        and the stored object's and the snapshot's SHA-256 and size, the etcd revision and the \
        key count are compared with the record. With --from s3:// the record is the object's \
        own metadata, so an object replaced together with its metadata matches it too: pin the \
        object with --expect-sha256 (the TalosEtcdBackup's status.sha256, or your own record).
        """
    @Option(help: "Name of a Succeeded TalosEtcdBackup.")
    var backup: String?

    @Option(help: "With --latest: a TalosEtcdBackupSchedule, whose newest Succeeded backup is read (a drill).")
    var schedule: String?

    @Flag(help: "With --schedule: its newest Succeeded backup (by completion time).")
    var latest = false

    @Option(name: .shortAndLong, help: "Namespace of --backup or --schedule (default: the kubeconfig context's namespace).")
    var namespace: String?

    @Option(help: "kubeconfig file for --backup or --schedule (default: $KUBECONFIG, the in-cluster service account, or ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "The stored object: s3://BUCKET/KEY, or a downloaded .db, .db.zst, .db.age or .db.zst.age file.")
    var from: String?

    @OptionGroup var s3: S3Options

    @Option(help: "age identity file for an encrypted backup (never logged or printed).")
    var identity: String?

    @Option(name: .customLong("expect-sha256"),
            help: "The stored object's SHA-256 (64 hex digits), as recorded elsewhere: the backup is used only if the object hashes to it.")
    var expectSHA256: String?

    @Option(name: .customLong("expect-state-sha256"),
            help: "The stored state object's SHA-256 (64 hex digits, the TalosEtcdBackup's status.stateSHA256): the state is used only if it hashes to it.")
    var expectStateSHA256: String?

    func validate() throws {
        guard [backup != nil, schedule != nil, from != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --backup NAME and --from s3://BUCKET/KEY or FILE (or --schedule NAME --latest)")
        }
        guard (schedule != nil) == latest else {
            throw ValidationError(latest ? "--latest goes with --schedule NAME" : "--schedule NAME needs --latest (its newest Succeeded backup)")
        }
        if from != nil && namespace != nil {
            throw ValidationError("--namespace goes with --backup NAME")
        }
        for (flag, value) in [("--expect-sha256", expectSHA256), ("--expect-state-sha256", expectStateSHA256)] {
            if let value, value.utf8.count != 64 || !value.allSatisfy({ $0.isASCII && $0.isHexDigit }) {
                throw ValidationError("\(flag) must be 64 hexadecimal digits (a SHA-256), not \(value.utf8.count) characters")
            }
        }
    }

    /// For the commands that use a kubeconfig only to read `--backup`: one without it is a mistake.
    func refuseKubeconfigWithoutBackup() throws {
        if from != nil && kubeconfig != nil { throw ValidationError("--kubeconfig goes with --backup NAME") }
    }

    /// Whether the record a check compares with is the object's own metadata (`--from s3://`),
    /// which whoever can replace the object can replace with it.
    var recordIsObjectMetadata: Bool { from?.hasPrefix("s3://") == true }

    /// What the comparison proves, for the commands' output.
    var provenance: String {
        if let expectSHA256 { return "the stored object's SHA-256 is \(expectSHA256.lowercased()), as --expect-sha256 pins it" }
        if recordIsObjectMetadata {
            return "the record is the object's own metadata: an object replaced together with its metadata would match it too; pin the object with --expect-sha256"
        }
        return ""
    }

    /// What the state's comparison proves, for the commands' output ("" when pinned or from a status).
    var stateProvenance: String {
        if let expectStateSHA256 { return "the state's SHA-256 is \(expectStateSHA256.lowercased()), as --expect-state-sha256 pins it" }
        if recordIsObjectMetadata {
            return "the state's record is the snapshot object's own metadata: whoever can write the bucket could replace both; pin the state with --expect-state-sha256"
        }
        return ""
    }

    /// `opened`, whose reads also fail unless the stored object hashes to --expect-sha256.
    private func pinned(_ opened: OpenedBackup) -> OpenedBackup {
        guard let expected = expectSHA256?.lowercased() else { return opened }
        let read = opened.read, name = opened.name
        return OpenedBackup(name: opened.name, record: opened.record, takenAt: opened.takenAt, encoding: opened.encoding, state: opened.state) { progress, sink in
            let restored = try await read(progress, sink)
            guard restored.storedSHA256 == expected else {
                throw RestoreProblem("\(name): the stored object's SHA-256 is \(restored.storedSHA256), not \(expected) (--expect-sha256): it is not the object you pinned")
            }
            return restored
        }
    }

    /// How the source is named in messages.
    var described: String { backup.map { "backup \($0)" } ?? schedule.map { "the newest backup of schedule \($0)" } ?? from ?? "" }

    /// Opens the source (the backup's status and the Secrets its spec names, or the object's
    /// metadata, or the file) and runs `body` with it; S3 and Kubernetes clients live as long
    /// as `body`, which may read the backup more than once.
    func withOpened<T: Sendable>(_ body: (OpenedBackup) async throws -> T) async throws -> T {
        if backup != nil || schedule != nil {
            let configuration = try KubernetesConfiguration.load(kubeconfig: kubeconfig)
            let namespace = self.namespace ?? configuration.namespace
            let kubernetes = try KubernetesClient(configuration: configuration, logger: Logger(label: "backup-source"))
            do {
                let name: String
                if let backup { name = backup } else { name = try await newestBackup(of: schedule ?? "", namespace: namespace, kubernetes) }
                let result = try await withBackup(named: name, namespace: namespace, kubernetes, body)
                try? await kubernetes.shutdown()
                return result
            } catch {
                try? await kubernetes.shutdown()
                throw error
            }
        }
        let from = self.from!
        if from.hasPrefix("s3://") {
            let destination = try s3.destination(from, flag: "--from")
            return try await S3Client.withClient(destination.s3) { client in
                let head = try await client.headObject(bucket: destination.bucket, key: destination.key)
                let record = StoredBackup(metadata: head.metadata)
                return try await body(pinned(try opened(name: from, client: client, destination: destination, record: record,
                                                        state: StoredState(metadata: head.metadata), takenAt: head.lastModified)))
            }
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: from)
        let modified = (attributes?[.modificationDate] as? Date).map { KubeTime($0).description }
        let encoding = try encoding(of: from, record: nil)
        let identities = try identities(for: encoding)
        let path = from
        let statePath = StoredState.key(besideSnapshot: from)
        let pinnedState = expectStateSHA256?.lowercased()
        let state = FileManager.default.fileExists(atPath: statePath) ? OpenedState(name: statePath) {
            let stored = try Self.readBounded(statePath)
            let restored = try StateRestore.decode(stored, encoding: encoding, identities: identities, recordedSHA256: pinnedState, name: statePath)
            return (restored, try StateManifest.parse(restored.manifest, source: statePath))
        } : nil
        return try await body(pinned(OpenedBackup(name: from, record: nil, takenAt: modified, encoding: encoding, state: state) { progress, sink in
            try await SnapshotRestore.decode(try FileChunks(path: path), encoding: encoding, identities: identities, record: nil,
                                             progress: progress, into: sink)
        }))
    }

    /// The newest Succeeded backup of schedule `name` (by its `backup-schedule` label, as
    /// retention selects them; by completion time).
    private func newestBackup(of name: String, namespace: String, _ kubernetes: KubernetesClient) async throws -> String {
        do {
            _ = try await kubernetes.get(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: namespace, name: name)
        } catch let error as KubernetesError where error.isNotFound {
            throw CannotCheck("TalosEtcdBackupSchedule \(namespace)/\(name) not found")
        }
        let backups = try await kubernetes.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace,
                                                   options: ListOptions(labelSelector: "\(TalosEtcdBackupSchedule.backupScheduleLabel)=\(name)")).items
        guard let newest = backups.filter({ $0.status?.phase == .succeeded && $0.metadata.deletionTimestamp == nil })
            .max(by: { ($0.status?.completionTime?.date ?? .distantPast) < ($1.status?.completionTime?.date ?? .distantPast) }),
              let backupName = newest.metadata.name else {
            throw RestoreProblem("TalosEtcdBackupSchedule \(namespace)/\(name) has no Succeeded backup (\(backups.count) backups in all)")
        }
        return backupName
    }

    private func withBackup<T: Sendable>(named name: String, namespace: String, _ kubernetes: KubernetesClient,
                                         _ body: (OpenedBackup) async throws -> T) async throws -> T {
        let backup: TalosEtcdBackup
        do {
            backup = try await kubernetes.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace, name: name)
        } catch let error as KubernetesError where error.isNotFound {
            throw CannotCheck("TalosEtcdBackup \(namespace)/\(name) not found")
        }
        guard let status = backup.status, status.phase == .succeeded, let key = status.filename else {
            throw RestoreProblem("TalosEtcdBackup \(namespace)/\(name) is \(backup.status?.phase?.rawValue ?? "Pending"), not Succeeded: it stored nothing to restore")
        }
        guard key.hasSuffix(SnapshotEncoding(fileName: key).fileExtension) else {
            throw RestoreProblem("TalosEtcdBackup \(namespace)/\(name): its status.filename \(key.prefix(300)) does not end in .db, .db.zst, .db.age or .db.zst.age; the status was altered")
        }
        // An adopted plain object may have no recorded hash: then it is checked by its own.
        let record = try StoredBackup(status: status)
        let credentials = CredentialResolver(secrets: KubernetesSecretReader(client: kubernetes))
        let configuration = try await credentials.s3Configuration(backup.spec.backupStorage.s3, namespace: namespace)
        let destination = BackupDestination(s3: configuration, bucket: status.bucket ?? backup.spec.backupStorage.s3.bucket, key: key)
        return try await S3Client.withClient(configuration) { client in
            try await body(pinned(try opened(name: "TalosEtcdBackup \(namespace)/\(name) (\(destination.url))", client: client,
                                             destination: destination, record: record,
                                             state: status.stateFilename.flatMap { key in status.stateSHA256.map { StoredState(key: key, sha256: $0) } },
                                             takenAt: status.completionTime?.description)))
        }
    }

    private func opened(name: String, client: S3Client, destination: BackupDestination, record: StoredBackup?, state: StoredState?,
                        takenAt: String?) throws -> OpenedBackup {
        let encoding = try encoding(of: destination.key, record: record)
        let identities = try identities(for: encoding)
        var openedState: OpenedState?
        if let state {
            let beside = StoredState.key(besideSnapshot: destination.key)
            guard state.key == beside else {
                throw RestoreProblem("\(name): its record names the state \(state.key.prefix(300)), which is not the key beside its snapshot (\(beside)); the record was altered")
            }
            let target = BackupDestination(s3: destination.s3, bucket: destination.bucket, key: state.key)
            let pinned = expectStateSHA256?.lowercased()
            openedState = OpenedState(name: target.url) {
                if let pinned, pinned != state.sha256.lowercased() {
                    throw RestoreProblem("\(target.url): the record says the state's SHA-256 is \(state.sha256), not \(pinned) (--expect-state-sha256): it is not the state you pinned")
                }
                let restored = try await StateRestore.download(target, with: client, encoding: encoding, identities: identities, recordedSHA256: state.sha256)
                return (restored, try StateManifest.parse(restored.manifest, source: target.url))
            }
        }
        if record == nil && encoding != SnapshotEncoding(compressed: false, encrypted: false) {
            printError("warning: \(destination.url) carries no complete talos-etcd-backup record in its metadata; it is checked by age's authentication, zstd's checksum, etcd's trailer and the bbolt structure only")
        }
        return OpenedBackup(name: name, record: record, takenAt: takenAt, encoding: encoding, state: openedState) { progress, sink in
            try await SnapshotRestore.download(destination, with: client, encoding: encoding, identities: identities, record: record,
                                               progress: progress, into: sink)
        }
    }

    /// A state file beside a downloaded snapshot, read whole but never past ``StateRestore/maximumSize``.
    private static func readBounded(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw RestoreProblem("\(path) cannot be read") }
        defer { try? handle.close() }
        let bytes = try handle.read(upToCount: StateRestore.maximumSize + 1) ?? Data()
        guard bytes.count <= StateRestore.maximumSize else { throw StateTooLarge(name: path, what: "stored object") }
        return Array(bytes)
    }

    // MARK: Encoding and identity

    /// What was done to the object, from its name; the record, when there is one, must agree.
    private func encoding(of name: String, record: StoredBackup?) throws -> SnapshotEncoding {
        let encoding = SnapshotEncoding(fileName: name)
        guard name.hasSuffix(encoding.fileExtension) else {
            throw ValidationError("\(name): the name must end in .db, .db.zst, .db.age or .db.zst.age, which says how it was stored")
        }
        if let record, (record.compression != nil) != encoding.compressed || (record.encryptedTo != nil) != encoding.encrypted {
            throw RestoreProblem("\(name): the name says \(encoding.fileExtension) but the backup's record says compression \(record.compression ?? "none"), \(record.encryptedTo == nil ? "unencrypted" : "encrypted"); the object was renamed or replaced")
        }
        return encoding
    }

    private func identities(for encoding: SnapshotEncoding) throws -> [AgeIdentity] {
        guard encoding.encrypted else { return [] }
        guard let identity else {
            throw CannotCheck("the backup is encrypted (.age): pass --identity with the age identity file of one of its recipients")
        }
        do {
            return try AgeIdentity.parseList(try String(contentsOfFile: identity, encoding: .utf8))
        } catch let error as AgeError {
            throw CannotCheck("--identity \(identity): \(error)")
        } catch {
            throw CannotCheck("--identity \(identity): cannot read it (\(error.localizedDescription))")
        }
    }
}

/// One stored backup, opened: what is known of it, and a way to read it through every check
/// (``SnapshotRestore``), as often as needed while its source is open.
struct OpenedBackup: Sendable {
    /// How messages name it.
    var name: String
    /// Its record (the backup's status, or the object's metadata); nil for a file or an object
    /// without one.
    var record: StoredBackup?
    /// When it was stored: the backup's completion time, the object's Last-Modified, the file's
    /// modification time.
    var takenAt: String?
    var encoding: SnapshotEncoding
    /// The control plane's state stored beside it, when its record names one (or, for a file,
    /// when `NAME.state.yaml...` lies beside it).
    var state: OpenedState?
    typealias Read = @Sendable (_ progress: (@Sendable (Int64) -> Void)?, _ sink: @escaping @Sendable (ByteBuffer) async throws -> Void) async throws -> RestoredSnapshot
    /// Streams the plain snapshot into `sink`; returns only when every check held.
    let read: Read

    init(name: String, record: StoredBackup?, takenAt: String?, encoding: SnapshotEncoding, state: OpenedState?, read: @escaping Read) {
        self.state = state
        self.name = name
        self.record = record
        self.takenAt = takenAt
        self.encoding = encoding
        self.read = read
    }
}

/// The state stored beside an opened backup: a way to read it (downloaded whole, bounded,
/// checked against the recorded SHA-256 before it is decrypted, decoded, parsed as the Secret
/// it must be).
struct OpenedState: Sendable {
    /// How messages name it (its URL or path).
    var name: String
    let read: @Sendable () async throws -> (restored: RestoredState, secret: StateManifest.Secret)
}

/// What keeps a command from checking a backup at all (no identity to decrypt it with, no such
/// schedule or backup): nothing is known of the backup itself (`verify` exits 2, not 1).
struct CannotCheck: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A command that cannot start or finish: what is missing or inconsistent.
struct RestoreProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
