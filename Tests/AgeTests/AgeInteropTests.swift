import Age
import Crypto
import Foundation
import TestSupport
import Testing

/// Our age against Debian's `age` CLI (1.1.1), both ways, at the sizes where the STREAM
/// chunking has edges; and what a damaged file gives.
@Suite("age: interoperability with the age CLI, and damage")
struct AgeInteropTests {
    static let sizes = [0, 1, 65_536, 65_537, 3 * 65_536, 1_000_003]

    static func bytes(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 9)) }
    }

    static func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient], pieces: Int = 10_000) throws -> [UInt8] {
        var encryptor = try AgeEncryptor(recipients: recipients)
        var output: [UInt8] = []
        var offset = 0
        repeat {
            output += try encryptor.encrypt(plaintext[offset..<min(plaintext.count, offset + pieces)])
            offset += pieces
        } while offset < plaintext.count
        return output + (try encryptor.finish())
    }

    static func decrypt(_ file: [UInt8], with identities: [AgeIdentity], pieces: Int = 7_777) throws -> [UInt8] {
        var decryptor = AgeDecryptor(identities: identities)
        var output: [UInt8] = []
        var offset = 0
        while offset < file.count {
            output += try decryptor.decrypt(file[offset..<min(file.count, offset + pieces)])
            offset += pieces
        }
        return output + (try decryptor.finish())
    }

    @Test("the age CLI decrypts what we encrypt (one and three recipients), at every chunk edge")
    func cliDecryptsOurs() async throws {
        let identities = [AgeIdentity(), AgeIdentity(), AgeIdentity()]
        let directory = try makeTemporaryDirectory("age")
        defer { removeTemporaryDirectory(directory) }
        let keyFile = directory.appendingPathComponent("key")
        try (identities[2].secretKeyString + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
        for size in Self.sizes {
            let plaintext = Self.bytes(size)
            for recipients in [[identities[2].recipient], identities.map(\.recipient)] {
                let file = try Self.encrypt(plaintext, to: recipients)
                let decrypted = try await ProcessRunner.run("/usr/bin/age", ["--decrypt", "--identity", keyFile.path], stdin: Data(file))
                #expect(decrypted.status == 0, "age --decrypt, \(size) bytes: \(decrypted.stderr)")
                #expect([UInt8](decrypted.stdoutData) == plaintext, "\(size) bytes, \(recipients.count) recipients")
            }
        }
    }

    @Test("we decrypt what the age CLI encrypts (one and two recipients), at every chunk edge; age-keygen's keys parse")
    func weDecryptTheirs() async throws {
        let directory = try makeTemporaryDirectory("age")
        defer { removeTemporaryDirectory(directory) }
        let keyFile = directory.appendingPathComponent("key")
        let keygen = try await ProcessRunner.run("/usr/bin/age-keygen", ["-o", keyFile.path])
        try #require(keygen.status == 0, "\(keygen.stderr)")
        let identities = try AgeIdentity.parseList(try String(contentsOf: keyFile, encoding: .utf8))
        let other = AgeIdentity()
        for size in Self.sizes {
            let plaintext = Self.bytes(size, seed: 3)
            for recipients in [[identities[0].recipient], [other.recipient, identities[0].recipient]] {
                let encrypted = try await ProcessRunner.run("/usr/bin/age", ["--encrypt"] + recipients.flatMap { ["--recipient", $0.description] },
                                                            stdin: Data(plaintext))
                try #require(encrypted.status == 0, "\(encrypted.stderr)")
                #expect(try Self.decrypt([UInt8](encrypted.stdoutData), with: identities) == plaintext, "\(size) bytes")
            }
        }
    }

    @Test("recipients: age1 strings round-trip; a recipients file with comments parses; a bad line is named")
    func recipients() throws {
        let identity = AgeIdentity()
        let text = identity.recipient.description
        #expect(text.hasPrefix("age1"))
        #expect(try AgeRecipient(parsing: text) == identity.recipient)
        #expect(try AgeIdentity(parsing: identity.secretKeyString).recipient == identity.recipient)
        let list = try AgeRecipient.parseList("# backups\n\n\(text)\n  \(AgeIdentity().recipient)  \n")
        #expect(list.count == 2 && list[0] == identity.recipient)
        #expect(throws: AgeError.self) { try AgeRecipient.parseList("\(text)\nage1notarecipient\n") }
        do {
            _ = try AgeRecipient.parseList("\(text)\nage1notarecipient\n")
        } catch {
            #expect("\(error)".contains("line 2"), "\(error)")
        }
        #expect(throws: AgeError.self) { try AgeRecipient(parsing: text.uppercased()) }
        #expect(throws: AgeError.self) { try AgeRecipient(parsing: String(text.dropLast()) + (text.last == "q" ? "p" : "q")) }
        #expect(identity.recipient.fingerprint.count == 16)
        #expect(!"\(identity.recipient.fingerprint)".contains(text))
    }

    @Test("damage is an error and releases nothing unauthenticated: a flipped byte in the header, in a middle chunk, in the last chunk; truncation at a chunk boundary; the wrong identity")
    func damage() throws {
        let identity = AgeIdentity()
        let plaintext = Self.bytes(3 * 65_536 + 100)
        let file = try Self.encrypt(plaintext, to: [identity.recipient])
        // After the header: a 16-byte nonce, 3 full chunks and one of 100 bytes, each with a 16-byte tag.
        let headerLength = file.count - (16 + 3 * (65_536 + 16) + (100 + 16))
        func flipped(_ index: Int) -> [UInt8] { var copy = file; copy[index] ^= 0x01; return copy }
        let cases: [(String, [UInt8])] = [
            ("a flipped byte in the header's stanza", flipped(40)),
            ("a flipped byte in the payload nonce", flipped(headerLength + 3)),
            ("a flipped byte in a middle chunk", flipped(headerLength + 16 + 65_552 + 1_000)),
            ("a flipped byte in the last chunk", flipped(file.count - 20)),
            ("cut at a chunk boundary", Array(file[..<(headerLength + 16 + 2 * 65_552)])),
            ("cut inside the last chunk", Array(file.dropLast(5))),
            ("a byte appended", file + [0]),
        ]
        for (name, damaged) in cases {
            #expect(throws: AgeError.self, "\(name)") { _ = try Self.decrypt(damaged, with: [identity]) }
        }
        #expect(throws: AgeError.noMatchingIdentity) { _ = try Self.decrypt(file, with: [AgeIdentity()]) }
        #expect(try Self.decrypt(file, with: [AgeIdentity(), identity]) == plaintext)
    }

    @Test("the encryptor holds at most one chunk: output keeps pace with input")
    func boundedMemory() throws {
        var encryptor = try AgeEncryptor(recipients: [AgeIdentity().recipient])
        var produced = 0, consumed = 0
        let piece = [UInt8](repeating: 0x61, count: 10_000)
        for _ in 0..<1_000 {
            produced += try encryptor.encrypt(piece).count
            consumed += piece.count
            #expect(consumed - produced <= 65_536 + 10_000, "plaintext held back is at most a chunk")
        }
        produced += try encryptor.finish().count
        #expect(produced > consumed)
    }
}
