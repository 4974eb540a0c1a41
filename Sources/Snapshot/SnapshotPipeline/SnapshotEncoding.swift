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

/// The stored form of plain snapshot bytes, chunk by chunk (``SnapshotEncoder``): no chunk is
/// held longer than the encoder's own block. The encoder finishes only when the input ended
/// without error, so a stream that fails (a snapshot whose trailer does not match) never
/// produces a complete-looking object. Fed by one task (the encoder is not shared).
public struct Encoding: ChunkStage, @unchecked Sendable {
    let encoder: SnapshotEncoder

    public init(_ plan: SnapshotEncodingPlan) throws {
        encoder = try SnapshotEncoder(compressionLevel: plan.compressionLevel, recipients: plan.recipients)
    }

    public mutating func take(_ chunk: ByteBuffer) throws -> ByteBuffer? {
        Self.buffer(try encoder.encode(chunk.readableBytesView))
    }

    public mutating func finish() throws -> ByteBuffer? { Self.buffer(try encoder.finish()) }

    private static func buffer(_ bytes: [UInt8]) -> ByteBuffer? { bytes.isEmpty ? nil : ByteBuffer(bytes: bytes) }
}

/// The plain snapshot's bytes from a stored object's (``SnapshotDecoder``), in pieces of
/// bounded size whatever the compression ratio; the decoder's end checks run when the stored
/// stream ends, so a cut-short object is an error, never a short snapshot. Fed by one task
/// (the decoder is not shared).
public struct Decoding: ChunkStage, @unchecked Sendable {
    let decoder: SnapshotDecoder

    public init(_ encoding: SnapshotEncoding, identities: [AgeIdentity]) throws {
        decoder = try SnapshotDecoder(encoding, identities: identities)
    }

    public mutating func take(_ chunk: ByteBuffer) throws -> ByteBuffer? {
        try decoder.feed(chunk.readableBytesView)
        return try more()
    }

    public mutating func more() throws -> ByteBuffer? { try decoder.nextPiece().map { ByteBuffer(bytes: $0) } }

    public mutating func finish() throws -> ByteBuffer? {
        try decoder.endOfInput()
        return try more()
    }
}
