import Crypto
import Foundation

/// The age v1 payload and key schedule (C2SP age specification): a random 16-byte file key,
/// wrapped for each X25519 recipient; the header MAC; a 16-byte nonce; then
/// ChaCha20-Poly1305 STREAM over 64 KiB chunks, the last one flagged.
enum AgeFormat {
    static let chunkSize = 64 * 1024
    static let tagSize = 16
    static let x25519Label = "age-encryption.org/v1/X25519"

    static func hkdf(_ secret: some ContiguousBytes, salt: some DataProtocol, info: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: secret), salt: salt, info: Data(info.utf8), outputByteCount: 32)
    }

    static func headerMAC(fileKey: [UInt8], macInput: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: macInput, using: hkdf(fileKey, salt: [UInt8](), info: "header")))
    }

    /// The nonce of chunk `counter`: an 11-byte big-endian counter and the last-chunk flag.
    static func chunkNonce(_ counter: UInt64, last: Bool) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        for index in 0..<8 { bytes[10 - index] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(index))) }
        bytes[11] = last ? 1 : 0
        return try! ChaChaPoly.Nonce(data: bytes)  // 12 bytes: cannot fail
    }

    static let zeroNonce = try! ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12))
}

/// Encrypts a stream to age v1 for X25519 recipients, in bounded memory: feed plaintext in
/// pieces of any size; each call returns the ciphertext that is final (whole 64 KiB chunks,
/// the last chunk held back until ``finish()`` knows it is the last). The first output carries
/// the header and the payload nonce.
public struct AgeEncryptor {
    private let payloadKey: SymmetricKey
    private var pending: [UInt8] = []
    private var counter: UInt64 = 0
    private var prefix: [UInt8]?

    public init(recipients: [AgeRecipient]) throws {
        guard !recipients.isEmpty else { throw AgeError.noRecipients }
        let fileKey = [UInt8](SymmetricKey(size: .init(bitCount: 128)).withUnsafeBytes { Array($0) })
        var stanzas: [AgeStanza] = []
        for recipient in recipients {
            let ephemeral = Curve25519.KeyAgreement.PrivateKey()
            let share = Array(ephemeral.publicKey.rawRepresentation)
            let shared = try ephemeral.sharedSecretFromKeyAgreement(with: recipient.publicKey)
            let wrapKey = shared.withUnsafeBytes { secret in
                AgeFormat.hkdf(Array(secret), salt: share + Array(recipient.publicKey.rawRepresentation), info: AgeFormat.x25519Label)
            }
            let sealed = try ChaChaPoly.seal(fileKey, using: wrapKey, nonce: AgeFormat.zeroNonce)
            stanzas.append(AgeStanza(arguments: ["X25519", UnpaddedBase64.encode(share)], body: Array(sealed.ciphertext) + Array(sealed.tag)))
        }
        let macInput = AgeHeader.macInput(for: stanzas)
        let mac = AgeFormat.headerMAC(fileKey: fileKey, macInput: macInput)
        let nonce = [UInt8](SymmetricKey(size: .init(bitCount: 128)).withUnsafeBytes { Array($0) })
        prefix = macInput + Array((" " + UnpaddedBase64.encode(mac) + "\n").utf8) + nonce
        payloadKey = AgeFormat.hkdf(fileKey, salt: nonce, info: "payload")
    }

    /// Ciphertext for `plaintext` that is ready to be written (possibly none yet).
    public mutating func encrypt(_ plaintext: some Collection<UInt8>) throws -> [UInt8] {
        var output = prefix ?? []
        prefix = nil
        pending.append(contentsOf: plaintext)
        var offset = 0
        // A full chunk is sealed only once a byte after it exists: the last chunk may be full.
        while pending.count - offset > AgeFormat.chunkSize {
            output += try seal(pending[offset..<(offset + AgeFormat.chunkSize)], last: false)
            offset += AgeFormat.chunkSize
        }
        if offset > 0 { pending.removeFirst(offset) }
        return output
    }

    /// The rest of the ciphertext: the last chunk (empty only when the whole payload is).
    public mutating func finish() throws -> [UInt8] {
        var output = prefix ?? []
        prefix = nil
        output += try seal(pending[...], last: true)
        pending = []
        return output
    }

    private mutating func seal(_ chunk: ArraySlice<UInt8>, last: Bool) throws -> [UInt8] {
        let sealed = try ChaChaPoly.seal(chunk, using: payloadKey, nonce: AgeFormat.chunkNonce(counter, last: last))
        counter += 1
        return Array(sealed.ciphertext) + Array(sealed.tag)
    }
}

/// Decrypts an age v1 stream with X25519 identities, in bounded memory, releasing only
/// authenticated plaintext: the header (recipient stanzas, MAC) is checked before any payload
/// byte, each chunk's tag before its plaintext, and ``finish()`` refuses a stream that ends
/// without its last chunk, or has bytes after it.
public struct AgeDecryptor {
    private enum State {
        case header([UInt8])
        case nonce(fileKey: [UInt8], [UInt8])
        case payload(SymmetricKey, [UInt8])
    }

    private let identities: [AgeIdentity]
    private var state: State = .header([])
    private var counter: UInt64 = 0
    private var sawLast = false

    public init(identities: [AgeIdentity]) {
        self.identities = identities
    }

    /// Plaintext that `ciphertext` (the next bytes of the file) completes, possibly none yet.
    public mutating func decrypt(_ ciphertext: some Collection<UInt8>) throws -> [UInt8] {
        switch state {
        case .header(var buffer):
            buffer.append(contentsOf: ciphertext)
            guard let (header, length) = try AgeHeader.parse(buffer) else {
                state = .header(buffer)
                return []
            }
            let fileKey = try unwrapFileKey(header)
            state = .nonce(fileKey: fileKey, [])
            return try decrypt(buffer[length...])
        case .nonce(let fileKey, var buffer):
            buffer.append(contentsOf: ciphertext)
            guard buffer.count >= 16 else {
                state = .nonce(fileKey: fileKey, buffer)
                return []
            }
            let key = AgeFormat.hkdf(fileKey, salt: buffer[..<16], info: "payload")
            state = .payload(key, [])
            return try decrypt(buffer[16...])
        case .payload(let key, var pending):
            pending.append(contentsOf: ciphertext)
            let sealedChunk = AgeFormat.chunkSize + AgeFormat.tagSize
            var output: [UInt8] = []
            var offset = 0
            // A full chunk followed by more bytes is not the last one.
            while pending.count - offset > sealedChunk {
                output += try open(pending[offset..<(offset + sealedChunk)], key: key, last: false)
                offset += sealedChunk
            }
            if offset > 0 { pending.removeFirst(offset) }
            state = .payload(key, pending)
            return output
        }
    }

    /// The last chunk's plaintext; throws if the stream ended early or was altered.
    public mutating func finish() throws -> [UInt8] {
        switch state {
        case .header: throw AgeError.malformedHeader("the file ends inside its header")
        case .nonce: throw AgeError.malformedHeader("the file ends before the payload nonce")  // as the reference classifies it
        case .payload(let key, let pending):
            guard pending.count >= AgeFormat.tagSize else {
                throw AgeError.corruptPayload(counter == 0 && pending.isEmpty ? "no payload chunk" : "the last chunk is cut short")
            }
            if pending.count == AgeFormat.tagSize && counter > 0 {
                throw AgeError.corruptPayload("an empty last chunk after a full one")
            }
            let output = try open(pending[...], key: key, last: true)
            state = .payload(key, [])
            return output
        }
    }

    private mutating func open(_ sealed: ArraySlice<UInt8>, key: SymmetricKey, last: Bool) throws -> [UInt8] {
        guard counter < (1 << 40) else { throw AgeError.corruptPayload("too many chunks") }
        do {
            let box = try ChaChaPoly.SealedBox(
                nonce: AgeFormat.chunkNonce(counter, last: last), ciphertext: sealed.dropLast(AgeFormat.tagSize), tag: sealed.suffix(AgeFormat.tagSize))
            let plaintext = try ChaChaPoly.open(box, using: key)
            counter += 1
            return Array(plaintext)
        } catch {
            throw AgeError.corruptPayload(last
                ? "chunk \(counter) does not authenticate as the last chunk (altered, or the stream is cut short)"
                : "chunk \(counter) does not authenticate (altered, or data after the last chunk)")
        }
    }

    /// The file key from the first X25519 stanza an identity opens; every X25519 stanza must be
    /// well-formed, and the header MAC must match.
    private func unwrapFileKey(_ header: AgeHeader) throws -> [UInt8] {
        var fileKey: [UInt8]?
        for stanza in header.stanzas where stanza.type == "X25519" {
            guard stanza.arguments.count == 2, let share = UnpaddedBase64.decode(Substring(stanza.arguments[1])), share.count == 32,
                  stanza.body.count == 32 else {
                throw AgeError.malformedHeader("an X25519 stanza needs one 32-byte share and a 32-byte body")
            }
            guard fileKey == nil else { continue }
            let sharePoint = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: share)
            for identity in identities {
                let shared: SharedSecret
                do {
                    shared = try identity.privateKey.sharedSecretFromKeyAgreement(with: sharePoint)
                } catch {
                    throw AgeError.malformedHeader("an X25519 share is a low-order point")
                }
                let secret = shared.withUnsafeBytes { Array($0) }
                guard secret.contains(where: { $0 != 0 }) else { throw AgeError.malformedHeader("an X25519 share is a low-order point") }
                let wrapKey = AgeFormat.hkdf(secret, salt: share + Array(identity.privateKey.publicKey.rawRepresentation), info: AgeFormat.x25519Label)
                guard let box = try? ChaChaPoly.SealedBox(nonce: AgeFormat.zeroNonce, ciphertext: stanza.body.prefix(16), tag: stanza.body.suffix(16)),
                      let opened = try? ChaChaPoly.open(box, using: wrapKey) else { continue }
                fileKey = Array(opened)
                break
            }
        }
        guard let fileKey else { throw AgeError.noMatchingIdentity }
        guard AgeFormat.headerMAC(fileKey: fileKey, macInput: header.macInput) == header.mac else { throw AgeError.headerMACMismatch }
        return fileKey
    }
}
