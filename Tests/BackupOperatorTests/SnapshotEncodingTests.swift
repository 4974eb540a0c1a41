import Age
import BackupOperator
import Foundation
import SnapshotPipeline
import Testing
import TestSupport

@Suite("Snapshot encoding: zstd then age, streaming, readable by the CLIs")
struct SnapshotEncodingTests {
    static func encode(_ data: [UInt8], level: Int?, recipients: [AgeRecipient]) throws -> [UInt8] {
        let encoder = try SnapshotEncoder(compressionLevel: level, recipients: recipients)
        var output: [UInt8] = []
        for start in stride(from: 0, to: data.count, by: 100_000) {
            output += try encoder.encode(data[start..<min(data.count, start + 100_000)])
        }
        return output + (try encoder.finish())
    }

    @Test("file names: .db, .db.zst, .db.age, .db.zst.age, in that order")
    func names() {
        #expect(SnapshotEncoding(compressed: true, encrypted: true).fileExtension == ".db.zst.age")
        #expect(SnapshotEncoding(compressed: false, encrypted: true).fileExtension == ".db.age")
        #expect(SnapshotEncoding(fileName: "x-1.db.zst.age") == SnapshotEncoding(compressed: true, encrypted: true))
        #expect(SnapshotEncoding(fileName: "x-1.db.zst") == SnapshotEncoding(compressed: true, encrypted: false))
        #expect(SnapshotEncoding(fileName: "x-1.db") == SnapshotEncoding(compressed: false, encrypted: false))
    }

    @Test("what the encoder writes, `age -d | zstd -d` reads, and so does the decoder; the decoder refuses a cut stream")
    func roundTrip() async throws {
        let identity = AgeIdentity()
        let directory = try makeTemporaryDirectory("encoding")
        defer { removeTemporaryDirectory(directory) }
        let key = directory.appendingPathComponent("key")
        try (identity.secretKeyString + "\n").write(to: key, atomically: true, encoding: .utf8)
        let data = (0..<2_000_000).map { UInt8(truncatingIfNeeded: ($0 / 11) % 97) }
        let stored = try Self.encode(data, level: 3, recipients: [AgeIdentity().recipient, identity.recipient])
        #expect(stored.count < data.count / 4, "compressed before encryption")
        let file = key.appendingPathExtension("db.zst.age")
        try Data(stored).write(to: file)
        let cli = try await ProcessRunner.run("/bin/sh", ["-c", "age -d -i \(key.path) \(file.path) | zstd -d -q -c"])
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect([UInt8](cli.stdoutData) == data)

        let decoder = try SnapshotDecoder(SnapshotEncoding(compressed: true, encrypted: true), identities: [identity])
        #expect(try decoder.decode(stored) + decoder.finish() == data)
        let cut = try SnapshotDecoder(SnapshotEncoding(compressed: true, encrypted: true), identities: [identity])
        _ = try cut.decode(stored.dropLast(100))
        #expect(throws: (any Error).self) { _ = try cut.finish() }
        // Compression alone, encryption alone.
        let zstdOnly = try Self.encode(data, level: 1, recipients: [])
        #expect(try SnapshotDecoder(SnapshotEncoding(compressed: true, encrypted: false), identities: []).decode(zstdOnly) == data)
        let ageOnly = try Self.encode(data, level: nil, recipients: [identity.recipient])
        let ageDecoder = try SnapshotDecoder(SnapshotEncoding(compressed: false, encrypted: true), identities: [identity])
        #expect(try ageDecoder.decode(ageOnly) + ageDecoder.finish() == data)
    }

    @Test("decoding hands out bounded pieces: a compressed and encrypted run of 64 MiB of zeros fed as one chunk never yields more than 128 KiB at a time")
    func boundedPieces() throws {
        let identity = AgeIdentity()
        let zeros = [UInt8](repeating: 0, count: 64 * 1024 * 1024)
        let stored = try Self.encode(zeros, level: 1, recipients: [identity.recipient])
        #expect(stored.count < 64 * 1024)
        let decoder = try SnapshotDecoder(SnapshotEncoding(compressed: true, encrypted: true), identities: [identity])
        var total = 0, largest = 0
        try decoder.feed(stored)
        while let piece = try decoder.nextPiece() { total += piece.count; largest = max(largest, piece.count) }
        try decoder.endOfInput()
        while let piece = try decoder.nextPiece() { total += piece.count; largest = max(largest, piece.count) }
        #expect(total == zeros.count)
        #expect(largest <= 128 * 1024 + 1024, "\(largest)")
    }
}
