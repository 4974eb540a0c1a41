import Crypto
import Foundation

/// An X25519 recipient, `age1...`: whom a backup is encrypted to. The operator needs only
/// these; the matching identity (private key) stays with whoever restores.
public struct AgeRecipient: Sendable, Equatable, CustomStringConvertible {
    public let publicKey: Curve25519.KeyAgreement.PublicKey

    ///
    /// The error never repeats the text: what is put where a recipient belongs may be a secret
    /// (most often an age identity, `age-keygen`'s output), and the error goes into a status,
    /// an Event and the log. An identity is named as such.
    public init(parsing text: String) throws {
        if text.uppercased().contains("AGE-SECRET-KEY-1") {
            throw AgeError.invalidKey("an age identity (a private key), not a recipient; put only age1... recipients here (age-keygen -y prints an identity's recipient)")
        }
        let (hrp, data): (String, [UInt8])
        do {
            (hrp, data) = try Bech32.decode(text)
        } catch {
            throw AgeError.invalidKey("not an age1... recipient (\(error))")
        }
        guard hrp == "age", text == text.lowercased(), data.count == 32 else {
            throw AgeError.invalidKey("not an X25519 age1... recipient")
        }
        publicKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: data)
    }

    init(publicKey: Curve25519.KeyAgreement.PublicKey) { self.publicKey = publicKey }

    /// The `age1...` string.
    public var description: String { Bech32.encode(hrp: "age", data: Array(publicKey.rawRepresentation)) }

    /// A short, safe name for the recipient (status and object metadata): the first 16 hex
    /// digits of the SHA-256 of its string.
    public var fingerprint: String {
        SHA256.hash(data: Data(description.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    public static func == (lhs: AgeRecipient, rhs: AgeRecipient) -> Bool { lhs.publicKey.rawRepresentation == rhs.publicKey.rawRepresentation }

    /// Recipients in the `age -R` file format: one per line, `#` comments and blank lines
    /// ignored. An invalid line is an error naming its number.
    public static func parseList(_ text: String) throws -> [AgeRecipient] {
        try keyLines(text).map { line in
            do {
                return try AgeRecipient(parsing: line.key)
            } catch AgeError.invalidKey(let problem) {
                throw AgeError.invalidKey("line \(line.number): \(problem)")
            }
        }
    }
}

/// An X25519 identity, `AGE-SECRET-KEY-1...`: what `restore --identity` reads. Never logged.
public struct AgeIdentity: Sendable {
    let privateKey: Curve25519.KeyAgreement.PrivateKey

    public init(parsing text: String) throws {
        let (hrp, data): (String, [UInt8])
        do {
            (hrp, data) = try Bech32.decode(text)
        } catch {
            throw AgeError.invalidKey("not an AGE-SECRET-KEY-1... identity (\(error))")
        }
        guard hrp == "age-secret-key-", text == text.uppercased(), data.count == 32 else {
            throw AgeError.invalidKey("not an X25519 AGE-SECRET-KEY-1... identity")
        }
        privateKey = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: data)
    }

    /// A new random identity (tests).
    public init() { privateKey = Curve25519.KeyAgreement.PrivateKey() }

    public var recipient: AgeRecipient { AgeRecipient(publicKey: privateKey.publicKey) }

    /// The `AGE-SECRET-KEY-1...` string, for writing an identity file (tests).
    public var secretKeyString: String {
        Bech32.encode(hrp: "age-secret-key-", data: Array(privateKey.rawRepresentation)).uppercased()
    }

    /// Identities in an identity file (`age -i` format): `AGE-SECRET-KEY-1...` lines, `#`
    /// comments and blank lines ignored.
    public static func parseList(_ text: String) throws -> [AgeIdentity] {
        let identities = try keyLines(text).map { line in
            do {
                return try AgeIdentity(parsing: line.key)
            } catch {
                throw AgeError.invalidKey("identity file line \(line.number) is not an AGE-SECRET-KEY-1... identity")
            }
        }
        guard !identities.isEmpty else { throw AgeError.invalidKey("the identity file holds no AGE-SECRET-KEY-1... line") }
        return identities
    }
}

/// The key lines of an `age -R` recipients file or an `age -i` identity file, with their line
/// numbers: blank lines and `#` comments left out, surrounding spaces trimmed.
private func keyLines(_ text: String) -> [(number: Int, key: String)] {
    text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { index, line in
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty || trimmed.hasPrefix("#") ? nil : (index + 1, trimmed)
    }
}
