import Age
import ArgumentParser
import BackupOperator
import Crypto
import Foundation
import NIOCore
import S3
import TalosAPI

/// `restore`: a stored backup back into the plain etcd snapshot that `talosctl bootstrap
/// --recover-from` takes: decrypted, decompressed, etcd's SHA-256 trailer checked, written
/// atomically. This version reads a downloaded object (`--from FILE`); what was done to it is
/// read from its name (`.zst`, `.age`).
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Turn a stored backup object into the plain etcd snapshot (decrypt, decompress, verify).",
        discussion: """
            --from FILE reads a downloaded object; its name says what was done to it: \
            NAME.db, NAME.db.zst (zstd), NAME.db.age (age), NAME.db.zst.age (both). An encrypted \
            object needs --identity, an age identity file (AGE-SECRET-KEY-1... lines, as \
            age-keygen writes). The snapshot's etcd SHA-256 trailer is checked, and --output is \
            written only when everything checks out (a temporary file beside it, synced, then \
            renamed): a wrong identity, an altered or truncated object leave no output file.
            """)

    @Option(help: "The stored object, downloaded: a .db, .db.zst, .db.age or .db.zst.age file.")
    var from: String

    @Option(help: "Where to write the plain snapshot.")
    var output: String

    @Option(help: "age identity file for an encrypted object (never logged or printed).")
    var identity: String?

    func run() async throws {
        let source = URL(fileURLWithPath: from)
        let encoding = SnapshotEncoding(fileName: source.lastPathComponent)
        guard source.lastPathComponent.hasSuffix(encoding.fileExtension) else {
            throw ValidationError("--from \(from): the name must end in .db, .db.zst, .db.age or .db.zst.age, which says how it was stored")
        }
        var identities: [AgeIdentity] = []
        if encoding.encrypted {
            guard let identity else {
                throw ValidationError("--from \(from) is encrypted (.age): pass --identity with the age identity file of one of its recipients")
            }
            do {
                identities = try AgeIdentity.parseList(try String(contentsOfFile: identity, encoding: .utf8))
            } catch let error as AgeError {
                throw ValidationError("--identity \(identity): \(error)")
            } catch {
                throw ValidationError("--identity \(identity): cannot read it (\(error.localizedDescription))")
            }
        }
        guard let input = FileHandle(forReadingAtPath: from) else {
            throw ValidationError("--from \(from): cannot be read")
        }
        defer { try? input.close() }
        let decoder = try SnapshotDecoder(encoding, identities: identities)
        do {
            let written = try await AtomicFile.write(to: URL(fileURLWithPath: output)) { handle in
                var hasher = SHA256()
                var size = 0
                for try await chunk in VerifiedSnapshotStream(DecodedFileChunks(input: input, decoder: decoder)) {
                    let bytes = Data(chunk.readableBytesView)
                    try handle.write(contentsOf: bytes)
                    hasher.update(data: bytes)
                    size += bytes.count
                }
                return (size, SigV4Signer.hex(hasher.finalize()))
            }
            print("wrote \(output): \(written.0) bytes, sha256 \(written.1) (etcd's trailer checked)")
        } catch {
            FileHandle.standardError.write(Data("error: \(from) could not be restored, no output written: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// A file read in 1 MiB pieces through a ``SnapshotDecoder``: the plain snapshot's bytes.
struct DecodedFileChunks: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer
    let input: FileHandle
    let decoder: SnapshotDecoder

    struct AsyncIterator: AsyncIteratorProtocol {
        let input: FileHandle
        let decoder: SnapshotDecoder
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            while !finished {
                let piece = try input.read(upToCount: 1 << 20) ?? Data()
                let plain: [UInt8]
                if piece.isEmpty {
                    finished = true
                    plain = try decoder.finish()
                } else {
                    plain = try decoder.decode(piece)
                }
                if !plain.isEmpty { return ByteBuffer(bytes: plain) }
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(input: input, decoder: decoder) }
}
