import Crypto
import Foundation
import NIOCore
import S3
import S3TestSupport
import TestSupport
import Testing


/// Deterministic pseudo-random bytes of a given length, in chunks of varying size, as a
/// stream; also tells the SHA-256 the bytes should have.
struct GeneratedBytes: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let length: Int
    let seed: UInt64
    let chunkSize: Int

    init(length: Int, seed: UInt64 = 1, chunkSize: Int = 1_048_576 + 7) {
        self.length = length
        self.seed = seed
        self.chunkSize = chunkSize
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: Int
        var state: UInt64
        let chunkSize: Int

        mutating func next() async throws -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            // Generating is CPU work on the cooperative pool (one thread per core): give other
            // tests' tasks (timers among them) a turn between chunks.
            await Task.yield()
            try Task.checkCancellation()
            let count = Swift.min(chunkSize, remaining)
            remaining -= count
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
                var index = 0
                while index < count {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    var word = state
                    for _ in 0..<8 where index < count {
                        pointer[index] = UInt8(truncatingIfNeeded: word >> 56)
                        word <<= 8
                        index += 1
                    }
                }
                return count
            }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(remaining: length, state: seed, chunkSize: chunkSize)
    }

    /// The SHA-256 of all the bytes, computed by generating them again.
    func sha256() async throws -> String {
        var hasher = SHA256()
        for try await chunk in self { chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// A key no other test uses.
func uniqueKey(_ name: String) -> String { "tests/\(UUID().uuidString.lowercased())/\(name)" }

/// The S3Error `body` throws, or nil.
func s3Error(_ body: () async throws -> Void) async -> S3Error? {
    await TestHelpers.caught(S3Error.self, body)
}
