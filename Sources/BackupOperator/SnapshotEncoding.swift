import Synchronization
import NIOCore
import Age
import Zstd

/// What was done to a snapshot before it was stored, in order: zstd compression, then age
/// encryption (the object key gets `.zst` then `.age`: docs/design.md, Names, labels and
/// ownership).
public struct SnapshotEncoding: Sendable, Equatable {
    public var compressed: Bool
    public var encrypted: Bool

    public init(compressed: Bool, encrypted: Bool) {
        self.compressed = compressed
        self.encrypted = encrypted
    }

    /// `.db`, then `.zst` when compressed and `.age` when encrypted.
    public var fileExtension: String { ".db" + (compressed ? ".zst" : "") + (encrypted ? ".age" : "") }

    /// The encoding a file name says (`.age` and `.zst` suffixes, outermost last).
    public init(fileName: String) {
        var name = Substring(fileName)
        encrypted = name.hasSuffix(".age")
        if encrypted { name = name.dropLast(4) }
        compressed = name.hasSuffix(".zst")
    }
}

/// The stored form of a snapshot from its plain bytes: compress, then encrypt, streaming.
public final class SnapshotEncoder {
    private let compressor: ZstdCompressor?
    private var encryptor: AgeEncryptor?

    /// `compressionLevel` nil stores uncompressed; `recipients` empty stores unencrypted.
    public init(compressionLevel: Int?, recipients: [AgeRecipient]) throws {
        compressor = try compressionLevel.map { try ZstdCompressor(level: $0) }
        encryptor = recipients.isEmpty ? nil : try AgeEncryptor(recipients: recipients)
    }

    public func encode(_ plain: some Collection<UInt8>) throws -> [UInt8] {
        let compressed = try compressor.map { try $0.compress(plain) } ?? Array(plain)
        return try encryptor?.encrypt(compressed) ?? compressed
    }

    public func finish() throws -> [UInt8] {
        let compressed = try compressor?.finish() ?? []
        guard encryptor != nil else { return compressed }
        return try encryptor!.encrypt(compressed) + encryptor!.finish()
    }
}

/// The plain snapshot from its stored form: decrypt, then decompress, streaming; only
/// authenticated bytes come out of the decryption, and the end refuses a stream that stops
/// early (age's last chunk, zstd's frame). Pull-based, so memory stays bounded whatever the
/// compression ratio: ``feed(_:)`` stored bytes, take plain ``nextPiece()``s until nil, repeat;
/// after the last stored byte, ``endOfInput()`` and take pieces until nil once more (that
/// last nil is returned only when the stream ended complete; otherwise it throws).
public final class SnapshotDecoder {
    private var decryptor: AgeDecryptor?
    private let decompressor: ZstdDecompressor?
    /// Plain bytes waiting to be taken, when there is no decompressor.
    private var pending: [UInt8] = []
    private var ended = false
    private var checkedEnd = false

    /// `identities` are needed when `encoding.encrypted`.
    public init(_ encoding: SnapshotEncoding, identities: [AgeIdentity]) throws {
        decryptor = encoding.encrypted ? AgeDecryptor(identities: identities) : nil
        decompressor = encoding.compressed ? try ZstdDecompressor() : nil
    }

    /// The next stored bytes; call once ``nextPiece()`` has returned nil.
    public func feed(_ stored: some Collection<UInt8>) throws {
        hand(try decryptor?.decrypt(stored) ?? Array(stored))
    }

    /// No more stored bytes: what decryption held back (its last chunk) is released.
    public func endOfInput() throws {
        ended = true
        hand(try decryptor?.finish() ?? [])
    }

    /// The next piece of the plain snapshot (at most ``ZstdDecompressor/pieceSize`` bytes when
    /// compressed), or nil when more stored bytes are needed, or, after ``endOfInput()``, when
    /// the snapshot is complete.
    public func nextPiece() throws -> [UInt8]? {
        if let decompressor {
            if let piece = try decompressor.nextPiece() { return piece }
            if ended && !checkedEnd {
                checkedEnd = true
                try decompressor.finish()
            }
            return nil
        }
        guard !pending.isEmpty else { return nil }
        defer { pending = [] }
        return pending
    }

    /// All the plain bytes `stored` gives (tests: the expansion is not bounded here).
    public func decode(_ stored: some Collection<UInt8>) throws -> [UInt8] {
        try feed(stored)
        return try drain()
    }

    /// The rest of the plain bytes after the last stored byte, checking the ends.
    public func finish() throws -> [UInt8] {
        try endOfInput()
        return try drain()
    }

    private func drain() throws -> [UInt8] {
        var plain: [UInt8] = []
        while let piece = try nextPiece() { plain += piece }
        return plain
    }

    private func hand(_ bytes: [UInt8]) {
        if let decompressor { decompressor.feed(bytes) } else { pending += bytes }
    }
}

/// How one backup's snapshot is to be stored: its spec's compression and encryption with the
/// recipients resolved (from the spec and the recipients Secret).
public struct SnapshotEncodingPlan: Sendable, Equatable {
    /// nil stores uncompressed.
    public var compressionLevel: Int?
    /// Empty stores unencrypted.
    public var recipients: [AgeRecipient]

    public init(compressionLevel: Int? = nil, recipients: [AgeRecipient] = []) {
        self.compressionLevel = compressionLevel
        self.recipients = recipients
    }

    /// Stored as taken.
    public static let plain = SnapshotEncodingPlan()

    public var encoding: SnapshotEncoding { SnapshotEncoding(compressed: compressionLevel != nil, encrypted: !recipients.isEmpty) }

    /// `zstd` when compressed (the status's and the metadata's `compression`).
    public var compression: String? { compressionLevel == nil ? nil : "zstd" }

    /// The recipients' fingerprints (the status's and the metadata's `encryptedTo`); nil when
    /// unencrypted.
    public var encryptedTo: [String]? { recipients.isEmpty ? nil : recipients.map(\.fingerprint) }
}

/// The stored form of `base`'s plain snapshot bytes: compressed, then encrypted, as they
/// arrive (no chunk is held longer than the encoder's own block), counting the plain bytes.
/// The encoder finishes only when `base` ended without error, so a stream that fails (a
/// snapshot whose trailer does not match) never produces a complete-looking object.
struct EncodedChunks<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    /// One encoder: the sequence is iterated once (by the upload).
    let encoder: SnapshotEncoder
    let plainSize = PlainByteCount()

    init(_ base: Base, plan: SnapshotEncodingPlan) throws {
        self.base = base
        encoder = try SnapshotEncoder(compressionLevel: plan.compressionLevel, recipients: plan.recipients)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let encoder: SnapshotEncoder
        let plainSize: PlainByteCount
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            while !finished {
                guard let chunk = try await base.next() else {
                    finished = true
                    let rest = try encoder.finish()
                    return rest.isEmpty ? nil : ByteBuffer(bytes: rest)
                }
                plainSize.add(chunk.readableBytes)
                let encoded = try encoder.encode(chunk.readableBytesView)
                if !encoded.isEmpty { return ByteBuffer(bytes: encoded) }
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), encoder: encoder, plainSize: plainSize)
    }
}

/// Bytes counted on the way through an ``EncodedChunks``.
final class PlainByteCount: Sendable {
    private let count = Mutex<Int64>(0)
    func add(_ bytes: Int) { count.withLock { $0 += Int64(bytes) } }
    var value: Int64 { count.withLock { $0 } }
}
