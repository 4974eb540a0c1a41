import Age
import ArgumentParser
import BackupOperator
import Foundation
import KubernetesClient
import Logging
import NIOCore
import S3
import TalosBackupAPI

#if canImport(Glibc)
import Glibc
#endif

/// `restore`: a stored backup back into the plain etcd snapshot that `talosctl bootstrap
/// --recover-from` takes, from a backup resource, an object in S3, or a downloaded file:
/// streamed, hashed, decrypted, decompressed, etcd's SHA-256 trailer checked, compared with the
/// backup's record, and written atomically (``SnapshotRestore``, ``AtomicFile``).
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Turn a stored backup into the plain etcd snapshot (download, decrypt, decompress, verify).",
        discussion: """
            Give exactly one source. --backup NAME reads the TalosEtcdBackup's status (bucket, \
            key, hashes) and its S3 settings and credentials (the Secrets its spec names) through \
            the kubeconfig. --from s3://BUCKET/KEY reads the object's x-amz-meta-* record \
            (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). --from FILE reads a \
            downloaded object. The key's or file's name says what was done: NAME.db, NAME.db.zst \
            (zstd), NAME.db.age (age), NAME.db.zst.age (both). An encrypted backup needs \
            --identity, an age identity file (AGE-SECRET-KEY-1... lines, as age-keygen writes). \
            The object is streamed through the checks: age authenticates every chunk, etcd's \
            SHA-256 trailer is checked, and the stored object's and the snapshot's SHA-256 and \
            size are compared with the record. --output is written only when everything checks \
            out (a temporary file beside it, synced, then renamed): a wrong identity, an altered, \
            replaced or truncated object, a missing object leave no output file.
            """)

    @Option(help: "Name of a Succeeded TalosEtcdBackup to restore.")
    var backup: String?

    @Option(help: "Namespace of --backup (default: the kubeconfig context's namespace).")
    var namespace: String?

    @Option(help: "kubeconfig file for --backup (default: $KUBECONFIG, the in-cluster service account, or ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "The stored object: s3://BUCKET/KEY, or a downloaded .db, .db.zst, .db.age or .db.zst.age file.")
    var from: String?

    @OptionGroup var s3: S3Options

    @Option(help: "Where to write the plain snapshot.")
    var output: String

    @Option(help: "age identity file for an encrypted backup (never logged or printed).")
    var identity: String?

    func validate() throws {
        guard (backup == nil) != (from == nil) else {
            throw ValidationError("give exactly one of --backup NAME and --from s3://BUCKET/KEY or FILE")
        }
        if backup == nil && (namespace != nil || kubeconfig != nil) {
            throw ValidationError("--namespace and --kubeconfig go with --backup NAME")
        }
    }

    func run() async throws {
        let source = backup.map { "backup \($0)" } ?? from!
        do {
            let restored: RestoredSnapshot
            if let backup {
                restored = try await restoreBackup(named: backup)
            } else if let from, from.hasPrefix("s3://") {
                let destination = try s3.destination(from, flag: "--from")
                restored = try await S3Client.withClient(destination.s3) { client in
                    let head = try await client.headObject(bucket: destination.bucket, key: destination.key)
                    let record = StoredBackup(metadata: head.metadata)
                    if record == nil && SnapshotEncoding(fileName: destination.key) != SnapshotEncoding(compressed: false, encrypted: false) {
                        printError("warning: \(from) carries no complete talos-etcd-backup record in its metadata; it is checked by age's authentication, zstd's checksum and etcd's trailer only")
                    }
                    return try await download(client, destination, record: record)
                }
            } else {
                restored = try await restoreFile(from!)
            }
            print("wrote \(output): \(restored.size) bytes, sha256 \(restored.sha256) (etcd's trailer checked; stored object \(restored.storedSize) bytes, sha256 \(restored.storedSHA256))")
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("error: \(source) could not be restored, no output written: \(error)")
            throw ExitCode(1)
        }
    }

    // MARK: Sources

    private func restoreBackup(named name: String) async throws -> RestoredSnapshot {
        let configuration = try KubernetesConfiguration.load(kubeconfig: kubeconfig)
        let namespace = self.namespace ?? configuration.namespace
        let kubernetes = try KubernetesClient(configuration: configuration, logger: Logger(label: "restore"))
        do {
            let result = try await restore(backup: name, namespace: namespace, kubernetes)
            try? await kubernetes.shutdown()
            return result
        } catch {
            try? await kubernetes.shutdown()
            throw error
        }
    }

    private func restore(backup name: String, namespace: String, _ kubernetes: KubernetesClient) async throws -> RestoredSnapshot {
        let backup: TalosEtcdBackup
        do {
            backup = try await kubernetes.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace, name: name)
        } catch let error as KubernetesError where error.isNotFound {
            throw RestoreProblem("TalosEtcdBackup \(namespace)/\(name) not found")
        }
        guard let status = backup.status, status.phase == .succeeded, let key = status.filename, let size = status.size,
              let sha256 = status.sha256 else {
            throw RestoreProblem("TalosEtcdBackup \(namespace)/\(name) is \(backup.status?.phase?.rawValue ?? "Pending"), not Succeeded: it stored nothing to restore")
        }
        let record = StoredBackup(node: status.node ?? "", size: size, sha256: sha256, snapshotSize: status.snapshotSize,
                                  snapshotSHA256: status.snapshotSHA256, compression: status.compression, encryptedTo: status.encryptedTo)
        let credentials = CredentialResolver(secrets: KubernetesSecretReader(client: kubernetes))
        let configuration = try await credentials.s3Configuration(backup.spec.backupStorage.s3, namespace: namespace)
        let destination = BackupDestination(s3: configuration, bucket: status.bucket ?? backup.spec.backupStorage.s3.bucket, key: key)
        return try await S3Client.withClient(configuration) { client in try await download(client, destination, record: record) }
    }

    private func download(_ client: S3Client, _ destination: BackupDestination, record: StoredBackup?) async throws -> RestoredSnapshot {
        let encoding = try encoding(of: destination.key, record: record)
        let identities = try identities(for: encoding)
        let progress = ProgressLine(total: record?.size)
        defer { progress.end() }
        return try await AtomicFile.write(to: URL(fileURLWithPath: output)) { handle in
            try await SnapshotRestore.download(destination, with: client, encoding: encoding, identities: identities, record: record,
                                               progress: progress.update) { chunk in
                try handle.write(contentsOf: Data(chunk.readableBytesView))
            }
        }
    }

    private func restoreFile(_ path: String) async throws -> RestoredSnapshot {
        let encoding = try encoding(of: path, record: nil)
        let identities = try identities(for: encoding)
        let chunks = try FileChunks(path: path)
        return try await AtomicFile.write(to: URL(fileURLWithPath: output)) { handle in
            try await SnapshotRestore.decode(chunks, encoding: encoding, identities: identities, record: nil) { chunk in
                try handle.write(contentsOf: Data(chunk.readableBytesView))
            }
        }
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
            throw ValidationError("the backup is encrypted (.age): pass --identity with the age identity file of one of its recipients")
        }
        do {
            return try AgeIdentity.parseList(try String(contentsOfFile: identity, encoding: .utf8))
        } catch let error as AgeError {
            throw ValidationError("--identity \(identity): \(error)")
        } catch {
            throw ValidationError("--identity \(identity): cannot read it (\(error.localizedDescription))")
        }
    }
}

/// A restore that cannot start: what is missing or inconsistent.
struct RestoreProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A file's bytes in 1 MiB pieces.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let handle: FileHandle

    init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw RestoreProblem("\(path) cannot be read") }
        self.handle = handle
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle

        mutating func next() async throws -> ByteBuffer? {
            guard let piece = try handle.read(upToCount: 1 << 20), !piece.isEmpty else { return nil }
            return ByteBuffer(bytes: piece)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }
}

/// "downloaded 412 of 2048 MiB (20%)" on standard error, rewritten in place at most twice a
/// second, only when standard error is a terminal (a log or a pipe gets nothing).
final class ProgressLine: @unchecked Sendable {
    private let total: Int64?
    private let enabled = isatty(STDERR_FILENO) == 1
    private var lastDrawn = ContinuousClock.now
    private var drawn = false

    init(total: Int64?) { self.total = total }

    func update(_ bytes: Int64) {
        guard enabled, ContinuousClock.now - lastDrawn > .milliseconds(500) else { return }
        lastDrawn = ContinuousClock.now
        drawn = true
        let mib = bytes >> 20
        let line = if let total, total > 0 {
            "downloaded \(mib) of \(total >> 20) MiB (\(bytes * 100 / total)%)"
        } else {
            "downloaded \(mib) MiB"
        }
        FileHandle.standardError.write(Data("\r\(line)\u{1B}[K".utf8))
    }

    func end() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
