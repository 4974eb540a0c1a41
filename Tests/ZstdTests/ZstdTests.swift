import Foundation
import TestSupport
import Testing
import Zstd

/// Our zstd (libzstd, streaming) against the zstd CLI both ways, and what damaged input gives.
@Suite("zstd: streaming through libzstd, interoperable with the zstd CLI")
struct ZstdTests {
    /// Compressible but not trivial: text-like runs with varying bytes.
    static func sample(_ count: Int) -> [UInt8] {
        (0..<count).map { index in UInt8(truncatingIfNeeded: (index / 7) % 251 ^ (index % 13 == 0 ? index >> 8 : 0)) }
    }

    static func compress(_ data: [UInt8], level: Int = 3, pieces: Int = 50_000) throws -> [UInt8] {
        let compressor = try ZstdCompressor(level: level)
        var output: [UInt8] = []
        var offset = 0
        while offset < data.count {
            output += try compressor.compress(data[offset..<min(data.count, offset + pieces)])
            offset += pieces
        }
        return output + (try compressor.finish())
    }

    static func decompress(_ data: [UInt8], pieces: Int = 33_333) throws -> [UInt8] {
        let decompressor = try ZstdDecompressor()
        var output: [UInt8] = []
        var offset = 0
        while offset < data.count {
            output += try decompressor.decompress(data[offset..<min(data.count, offset + pieces)])
            offset += pieces
        }
        try decompressor.finish()
        return output
    }

    @Test("the zstd CLI decompresses what we compress, at levels 1, 3 and 19, empty to 2 MB", arguments: [1, 3, 19])
    func cliReadsOurs(level: Int) async throws {
        // Level 19 is slow by design: the large case stays at 2 MB so the parallel suite is not starved.
        for size in [0, 1, 131_072, 2_000_000] {
            let data = Self.sample(size)
            let compressed = try Self.compress(data, level: level)
            let result = try await ProcessRunner.run("/usr/bin/zstd", ["-d", "-c", "-q"], stdin: Data(compressed))
            #expect(result.status == 0, "zstd -d, level \(level), \(size) bytes: \(result.stderr)")
            #expect([UInt8](result.stdoutData) == data, "level \(level), \(size) bytes")
            if size == 2_000_000 { #expect(compressed.count < size / 4, "compresses: \(compressed.count) bytes") }
        }
    }

    @Test("we decompress what the zstd CLI compresses, one frame or two concatenated")
    func weReadTheirs() async throws {
        let first = Self.sample(3_000_000), second = Self.sample(1000).reversed() as [UInt8]
        let one = try await ProcessRunner.run("/usr/bin/zstd", ["-c", "-q", "-9"], stdin: Data(first))
        let two = try await ProcessRunner.run("/usr/bin/zstd", ["-c", "-q"], stdin: Data(second))
        try #require(one.status == 0 && two.status == 0)
        #expect(try Self.decompress([UInt8](one.stdoutData)) == first)
        #expect(try Self.decompress([UInt8](one.stdoutData) + [UInt8](two.stdoutData)) == first + second)
    }

    @Test("truncated or altered input is an error, never short output; levels outside 1...19 are refused")
    func damage() throws {
        let data = Self.sample(1_000_000)
        let compressed = try Self.compress(data)
        #expect(throws: ZstdError.self) { _ = try Self.decompress(Array(compressed.dropLast(10))) }
        #expect(throws: ZstdError.self) { _ = try Self.decompress(Array(compressed.prefix(compressed.count / 2))) }
        var flipped = compressed
        flipped[compressed.count / 2] ^= 0x40
        #expect(throws: ZstdError.self) { _ = try Self.decompress(flipped) }
        #expect(throws: ZstdError.self) { _ = try Self.decompress([]) }
        #expect(throws: ZstdError.self) { _ = try Self.decompress(Array("not zstd at all".utf8)) }
        #expect(throws: ZstdError.self) { _ = try ZstdCompressor(level: 0) }
        #expect(throws: ZstdError.self) { _ = try ZstdCompressor(level: 20) }
        #expect(try Self.decompress(compressed) == data)
    }

    @Test("a small input that expands enormously comes out in pieces of at most 128 KiB: 256 MiB of zeros from a few KiB, ending exactly at a piece boundary (once reported as truncated)")
    func boundedPieces() throws {
        let size = 256 * 1024 * 1024
        let compressor = try ZstdCompressor(level: 1)
        var compressed: [UInt8] = []
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<(size >> 20) { compressed += try compressor.compress(zeros) }
        compressed += try compressor.finish()
        #expect(compressed.count < 64 * 1024, "\(compressed.count) bytes")

        let decompressor = try ZstdDecompressor()
        decompressor.feed(compressed)  // all of it at once
        var total = 0, largest = 0, pieces = 0
        while let piece = try decompressor.nextPiece() {
            total += piece.count
            largest = max(largest, piece.count)
            pieces += 1
            #expect(piece.first == 0 && piece.last == 0)
        }
        try decompressor.finish()
        #expect(total == size)
        #expect(largest <= ZstdDecompressor.pieceSize && ZstdDecompressor.pieceSize <= 128 * 1024 + 1024)
        #expect(pieces >= size / ZstdDecompressor.pieceSize)
    }
}
