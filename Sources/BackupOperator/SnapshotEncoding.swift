import Age
import Zstd

/// What was done to a snapshot before it was stored, in order: zstd compression, then age
/// encryption (DESIGN.md section 1; the object key gets `.zst` then `.age`).
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
/// authenticated bytes come out of the decryption, and ``finish()`` refuses a stream that ends
/// early (age's last chunk, zstd's frame).
public final class SnapshotDecoder {
    private var decryptor: AgeDecryptor?
    private let decompressor: ZstdDecompressor?

    /// `identities` are needed when `encoding.encrypted`.
    public init(_ encoding: SnapshotEncoding, identities: [AgeIdentity]) throws {
        decryptor = encoding.encrypted ? AgeDecryptor(identities: identities) : nil
        decompressor = encoding.compressed ? try ZstdDecompressor() : nil
    }

    public func decode(_ stored: some Collection<UInt8>) throws -> [UInt8] {
        let decrypted = try decryptor?.decrypt(stored) ?? Array(stored)
        return try decompressor.map { try $0.decompress(decrypted) } ?? decrypted
    }

    public func finish() throws -> [UInt8] {
        let decrypted = try decryptor?.finish() ?? []
        guard let decompressor else { return decrypted }
        let rest = try decompressor.decompress(decrypted)
        try decompressor.finish()
        return rest
    }
}
