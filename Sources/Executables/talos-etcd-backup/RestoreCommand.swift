import ArgumentParser
import BackupResolution
import ControlPlaneState
import Foundation
import NIOCore
import SnapshotPipeline

#if canImport(Glibc)
import Glibc
#endif

/// `restore`: a stored backup back into the plain etcd snapshot that `talosctl bootstrap
/// --recover-from` takes, from a backup resource, an object in S3, or a downloaded file:
/// streamed, hashed, decrypted, decompressed, etcd's SHA-256 trailer and the bbolt structure
/// checked, compared with the backup's record, and written atomically (``SnapshotRestore``, ``AtomicFile``).
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Turn a stored backup into the plain etcd snapshot (download, decrypt, decompress, verify).",
        discussion: BackupSourceOptions.discussion + """
             --output is written only when everything checks out (a temporary file beside it, \
            synced, then renamed): a wrong identity, an altered, replaced or truncated object, a \
            missing object leave no output file. The file is created with mode 0600 (a snapshot \
            holds every Secret of the cluster); an existing --output is replaced only with \
            --force; SIGINT or SIGTERM removes the partial file. --state-output FILE also \
            writes the control plane's state stored beside the snapshot (a Secret manifest for \
            kubectl apply -f, decrypted and decompressed as the snapshot, mode 0600), checked \
            against the recorded SHA-256 and parsed as the Secret it must be; it is read before \
            the snapshot and written after it, and neither file is written unless both check out.
            """)

    @OptionGroup var source: BackupSourceOptions

    @Option(help: "Where to write the plain snapshot (mode 0600).")
    var output: String

    @Option(help: "Where to write the control plane's state stored beside the snapshot, as a Secret manifest (mode 0600).")
    var stateOutput: String?

    @Flag(help: "Replace --output and --state-output if they exist.")
    var force = false

    func validate() throws {
        try source.refuseKubeconfigWithoutBackup()
        if let stateOutput, URL(fileURLWithPath: stateOutput).standardized == URL(fileURLWithPath: output).standardized {
            throw ValidationError("--state-output and --output must be different files")
        }
    }

    func run() async throws {
        do {
            if !force {
                try AtomicFile.refuseExisting(URL(fileURLWithPath: output))
                if let stateOutput { try AtomicFile.refuseExisting(URL(fileURLWithPath: stateOutput)) }
            }
            // Both files or neither: the state's directory must take a file before the snapshot is read.
            if let stateOutput {
                let directory = URL(fileURLWithPath: stateOutput).deletingLastPathComponent().path
                guard access(directory, W_OK) == 0 else {
                    throw RestoreProblem("--state-output \(stateOutput): its directory \(directory) does not exist or cannot be written")
                }
            }
            let (restored, state) = try await source.withOpened { backup in
                var state: (restored: RestoredState, secret: StateManifest.Secret)?
                if stateOutput != nil {
                    guard let opened = backup.state else {
                        throw RestoreProblem("\(backup.name) has no state stored beside it (no state recorded, or no NAME.state.yaml file beside it); nothing written")
                    }
                    state = try await opened.read()
                }
                let progress = ProgressLine(total: backup.record?.size)
                defer { progress.end() }
                let restored = try await AtomicFile.write(to: URL(fileURLWithPath: output), replacing: force) { handle in
                    try await backup.read(progress.update) { chunk in
                        try handle.write(contentsOf: Data(chunk.readableBytesView))
                    }
                }
                return (restored, state)
            }
            print("wrote \(output): \(restored.size) bytes, sha256 \(restored.sha256), etcd revision \(restored.revision), \(restored.totalKeys) keys (etcd's trailer and the bbolt structure checked; stored object \(restored.storedSize) bytes, sha256 \(restored.storedSHA256))")
            if let stateOutput, let state {
                do {
                    try await AtomicFile.write(to: URL(fileURLWithPath: stateOutput), replacing: force) { handle in
                        try handle.write(contentsOf: Data(state.restored.manifest))
                    }
                } catch {
                    printError("error: \(output) was written, but the state could not be: \(error)")
                    throw ExitCode(1)
                }
                print("wrote \(stateOutput): Secret \(state.secret.namespace)/\(state.secret.name), \(state.secret.data.count) keys (stored object \(state.restored.storedSize) bytes, sha256 \(state.restored.storedSHA256)); apply it with kubectl apply -f \(stateOutput) before the TalosControlPlane")
                if !source.stateProvenance.isEmpty { print(source.stateProvenance) }
            }
        } catch let error as ValidationError {
            throw error
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: \(source.described) could not be restored, no output written: \(error)")
            throw ExitCode(1)
        }
    }
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
