import Age

/// An age file or key text from outside (a stored object, a recipients Secret, an identity
/// file): decryption with a fixed identity ends in plaintext or an AgeError, never a trap; key
/// text parses or throws; and whatever the input, encrypting it to the identity's recipient and
/// decrypting again gives it back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAge(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    // A key made for fuzzing only (age-keygen); it protects nothing.
    let identity = try! AgeIdentity(parsing: "AGE-SECRET-KEY-193EDFS5XPTN8NXUEQJQ7A695T8PLYNY76JKV793FVZHZTX9RDJASJWWPE6")
    var decryptor = AgeDecryptor(identities: [identity])
    _ = try? decryptor.decrypt(bytes)
    _ = try? decryptor.finish()

    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? AgeRecipient.parseList(text)
    _ = try? AgeIdentity.parseList(text)
    if let recipient = try? AgeRecipient(parsing: text) {
        precondition((try? AgeRecipient(parsing: recipient.description)) == recipient, "a recipient does not round-trip")
    }

    do {
        var encryptor = try AgeEncryptor(recipients: [identity.recipient])
        let sealed = try encryptor.encrypt(bytes) + encryptor.finish()
        var opener = AgeDecryptor(identities: [identity])
        let opened = try opener.decrypt(sealed) + opener.finish()
        precondition(opened == bytes, "encrypt then decrypt is not the identity")
    } catch {
        preconditionFailure("encrypting to a valid recipient failed: \(error)")
    }
    return 0
}
