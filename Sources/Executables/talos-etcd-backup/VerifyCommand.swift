import Age
import ArgumentParser
import BackupResolution
import Bbolt
import S3
import TalosAPI
import Zstd
import ControlPlaneState
import SnapshotPipeline

/// `verify`: every check a restore makes, without writing anything: the evidence that a stored
/// backup will restore, for a person or a periodic job.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that a stored backup restores (download, decrypt, decompress, verify), writing nothing.",
        discussion: BackupSourceOptions.discussion + """
             The control plane's state stored beside the snapshot, when the record names one \
            (or a NAME.state.yaml file lies beside --from FILE), is checked too: its SHA-256 \
            against the record, its decryption and decompression, and that it is a Secret \
            manifest. Nothing is written. Exit status (what a Job reports): 0 when every \
            check holds; 1 when the backup does not restore (a check failed, the object, its \
            state or its bucket is missing or altered, the identity does not decrypt it, the \
            schedule has no Succeeded backup); 2 when it could not be checked (no such schedule \
            or backup, no readable identity, the API server or the store unreachable, \
            credentials refused); 64 for wrong options. The failure is on standard error.
            """)

    @OptionGroup var source: BackupSourceOptions

    func validate() throws { try source.refuseKubeconfigWithoutBackup() }

    func run() async throws {
        do {
            let (name, record, verified, state) = try await source.withOpened { backup in
                let progress = ProgressLine(total: backup.record?.size)
                defer { progress.end() }
                let verified = try await backup.read(progress.update) { _ in }
                var state: (String, (restored: RestoredState, secret: StateManifest.Secret))?
                if let opened = backup.state { state = (opened.name, try await opened.read()) }
                return (backup.name, backup.record, verified, state)
            }
            print("verified \(name): stored object \(verified.storedSize) bytes, sha256 \(verified.storedSHA256); snapshot \(verified.size) bytes, sha256 \(verified.sha256); etcd revision \(verified.revision), \(verified.totalKeys) keys")
            switch record {
            case .none:
                print("no record to compare with (a file, or an object without talos-etcd-backup metadata): checked by its own hashes, etcd's trailer and the bbolt structure")
            case .some(let record) where record.revision == nil:
                print("matches the record's sizes and hashes (the record predates revisions: revision and key count not compared)")
            case .some:
                print("matches the record: sizes, hashes, revision and key count")
            }
            if case let (stateName, state)? = state {
                print("verified its state \(stateName): stored object \(state.restored.storedSize) bytes, sha256 \(state.restored.storedSHA256); Secret \(state.secret.namespace)/\(state.secret.name), \(state.secret.data.count) keys")
                if !source.stateProvenance.isEmpty { print(source.stateProvenance) }
            } else {
                print("no state stored beside it (no state recorded, or no NAME.state.yaml file beside it)")
            }
            if !source.provenance.isEmpty { print(source.provenance) }
        } catch let error as ValidationError {
            throw error
        } catch {
            let code = Self.exitCode(for: error)
            printError("error: \(source.described) \(code == 1 ? "did not verify" : "could not be verified"): \(error)")
            throw ExitCode(code)
        }
    }

    /// 1: the backup itself does not restore; 2: it could not be checked (see the discussion).
    static func exitCode(for error: any Error) -> Int32 {
        switch error {
        case is RestoreMismatch, is SnapshotCorrupt, is BboltInvalid, is AgeError, is ZstdError, is StateTooLarge,
             is StateManifestInvalid, is RestoreProblem, is IncompleteRecord:
            return 1
        case let error as S3Error where error.kind == .noSuchKey || error.kind == .noSuchBucket:
            return 1
        default:
            return 2
        }
    }
}
