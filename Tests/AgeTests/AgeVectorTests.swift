import Age
import Crypto
import Foundation
import TestSupport
import Testing

/// The C2SP age test vectors (CCTV), vendored unchanged in `tests/vectors/age/` with their
/// README and licence note: a decryptor must succeed exactly on `expect: success`, releasing
/// plaintext whose SHA-256 is `payload`, and fail on every other vector for the stated reason.
/// Vectors of features this implementation leaves out on purpose (armor, scrypt passphrases,
/// hybrid post-quantum recipients) are counted as skipped, by name.
@Suite("age: C2SP test vectors")
struct AgeVectorTests {
    struct Vector: Sendable {
        var name: String
        var fields: [String: [String]]
        var body: [UInt8]
        var expect: String { fields["expect"]?.first ?? "" }
    }

    static func load() throws -> [Vector] {
        let root = repositoryRoot.appendingPathComponent("tests/vectors/age")
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0 != "README.md" }.sorted()
        return try names.map { name in
            let bytes = [UInt8](try Data(contentsOf: root.appendingPathComponent(name)))
            let separator = try #require(bytes.indices.first { bytes[$0] == 10 && $0 + 1 < bytes.count && bytes[$0 + 1] == 10 })
            var fields: [String: [String]] = [:]
            for line in String(decoding: bytes[..<separator], as: UTF8.self).split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[String(line[..<colon]), default: []].append(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            return Vector(name: name, fields: fields, body: Array(bytes[(separator + 2)...]))
        }
    }

    /// zlib-compressed vector bodies, inflated by Python's zlib (an independent inflater).
    static func inflate(_ bytes: [UInt8]) async throws -> [UInt8] {
        let result = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", "import sys, zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))"],
                                                 stdin: Data(bytes))
        try #require(result.status == 0, "zlib: \(result.stderr)")
        return [UInt8](result.stdoutData)
    }

    /// Why this implementation does not take the vector, or nil.
    static func unsupported(_ vector: Vector) -> String? {
        if vector.fields["armored"]?.first == "yes" || vector.name.hasPrefix("armor") { return "armor" }
        if vector.fields["passphrase"] != nil { return "scrypt passphrase" }
        if (vector.fields["identity"] ?? []).contains(where: { !$0.hasPrefix("AGE-SECRET-KEY-1") }) { return "post-quantum identity" }
        return nil
    }

    @Test("every X25519 vector decrypts or fails exactly as expected; the rest are counted as skipped")
    func vectors() async throws {
        let vectors = try Self.load()
        try #require(vectors.count > 100, "the vectors were not found")
        var checked = 0
        var skipped: [String: [String]] = [:]
        for vector in vectors {
            if let reason = Self.unsupported(vector) {
                skipped[reason, default: []].append(vector.name)
                continue
            }
            checked += 1
            let identities = try (vector.fields["identity"] ?? []).map { try AgeIdentity(parsing: $0) }
            let file = vector.fields["compressed"]?.first == "zlib" ? try await Self.inflate(vector.body) : vector.body
            var decryptor = AgeDecryptor(identities: identities)
            let outcome: Result<[UInt8], AgeError>
            do {
                // In pieces of 1,000 bytes, so that chunk and header boundaries fall anywhere.
                var plaintext: [UInt8] = []
                var offset = 0
                while offset < file.count {
                    plaintext += try decryptor.decrypt(file[offset..<min(file.count, offset + 1000)])
                    offset += 1000
                }
                plaintext += try decryptor.finish()
                outcome = .success(plaintext)
            } catch let error as AgeError {
                outcome = .failure(error)
            }
            switch (vector.expect, outcome) {
            case ("success", .success(let plaintext)):
                let digest = SHA256.hash(data: plaintext).map { String(format: "%02x", $0) }.joined()
                #expect(digest == vector.fields["payload"]?.first, "\(vector.name): wrong plaintext")
            case ("success", .failure(let error)):
                Issue.record("\(vector.name) must decrypt: \(error)")
            case (let expected, .success):
                Issue.record("\(vector.name) must fail (\(expected)) but decrypted")
            case ("no match", .failure(let error)):
                #expect(error == .noMatchingIdentity, "\(vector.name): \(error)")
            case ("HMAC failure", .failure(let error)):
                #expect(error == .headerMACMismatch, "\(vector.name): \(error)")
            case ("header failure", .failure(let error)):
                if case .malformedHeader = error {} else { Issue.record("\(vector.name) is a header failure, not: \(error)") }
            case ("payload failure", .failure(let error)):
                if case .corruptPayload = error {} else { Issue.record("\(vector.name) is a payload failure, not: \(error)") }
            case (let expected, .failure(let error)):
                Issue.record("\(vector.name): unknown expectation \(expected) (\(error))")
            }
        }
        print("age vectors: \(checked) checked; skipped: " + skipped.map { "\($0.key) \($0.value.count)" }.sorted().joined(separator: ", "))
        #expect(checked >= 60, "most vectors are X25519 ones")
    }
}
