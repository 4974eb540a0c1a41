import Age
import Bbolt
import Crypto
import NIOCore
import SnapshotPipeline
import SnapshotTrailer
import Testing

/// The pipeline's pieces in memory: the chunk combinator's end and error rules, the coders'
/// end checks, and the snapshot checks on a synthetic but sound etcd snapshot.
@Suite("Snapshot pipeline stages (in memory)")
struct ChunkStageTests {
    /// An `AsyncSequence` of chunks from memory, optionally failing after them.
    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        var pieces: [[UInt8]]
        var failure: SourceFailed?
        struct SourceFailed: Error, Equatable {}
        struct AsyncIterator: AsyncIteratorProtocol {
            var pieces: [[UInt8]]
            var failure: SourceFailed?
            mutating func next() async throws -> ByteBuffer? {
                if !pieces.isEmpty { return ByteBuffer(bytes: pieces.removeFirst()) }
                if let failure { throw failure }
                return nil
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(pieces: pieces, failure: failure) }
    }

    /// A stage that counts what it saw and throws at its end.
    struct FailingAtEnd: ChunkStage {
        struct EndCheck: Error, Equatable {}
        mutating func take(_ chunk: ByteBuffer) throws -> ByteBuffer? { chunk }
        mutating func finish() throws -> ByteBuffer? { throw EndCheck() }
    }

    /// A stage that holds everything back and releases it in pieces of 3 bytes at the end.
    struct HoldingBack: ChunkStage {
        var held: [UInt8] = []
        var ended = false
        mutating func take(_ chunk: ByteBuffer) throws -> ByteBuffer? {
            held += chunk.readableBytesView
            return nil
        }
        mutating func more() throws -> ByteBuffer? {
            guard ended, !held.isEmpty else { return nil }
            let piece = Array(held.prefix(3))
            held.removeFirst(piece.count)
            return ByteBuffer(bytes: piece)
        }
        mutating func finish() throws -> ByteBuffer? {
            ended = true
            return try more()
        }
    }

    func collect<S: AsyncSequence>(_ sequence: S) async throws -> [UInt8] where S.Element == ByteBuffer {
        var bytes: [UInt8] = []
        for try await chunk in sequence { bytes += chunk.readableBytesView }
        return bytes
    }

    @Test("a stage that throws at the end ends the stream with that error, and every later call throws it again")
    func endCheckFails() async throws {
        var iterator = Chunks(pieces: [[1, 2], [3]]).through(FailingAtEnd()).makeAsyncIterator()
        #expect(try await iterator.next() == ByteBuffer(bytes: [1, 2]))
        #expect(try await iterator.next() == ByteBuffer(bytes: [3]))
        await #expect(throws: FailingAtEnd.EndCheck.self) { _ = try await iterator.next() }
        await #expect(throws: FailingAtEnd.EndCheck.self, "never a clean end after the failure") { _ = try await iterator.next() }
    }

    @Test("output held back is released through more() after finish(), in order, then the stream ends")
    func heldOutput() async throws {
        #expect(try await collect(Chunks(pieces: [[1, 2], [3, 4, 5], [6, 7]]).through(HoldingBack())) == [1, 2, 3, 4, 5, 6, 7])
        #expect(try await collect(Chunks(pieces: []).through(HoldingBack())) == [])
    }

    @Test("a source that fails is never finished: the encoder's end is not written, the digest is not set")
    func sourceFails() async throws {
        let facts = StreamFacts()
        let stream = Chunks(pieces: [Array(repeating: 7, count: 10_000)], failure: .init())
            .digested(into: facts).through(try Encoding(SnapshotEncodingPlan(compressionLevel: 3)))
        var produced: [UInt8] = []
        await #expect(throws: Chunks.SourceFailed.self) {
            for try await chunk in stream { produced += chunk.readableBytesView }
        }
        #expect(facts.digest == nil)
        // What came out is no complete zstd frame: decoding it fails at its end.
        let decoder = try SnapshotDecoder(SnapshotEncoding(compressed: true, encrypted: false), identities: [])
        #expect(throws: (any Error).self) { _ = try decoder.decode(produced) + decoder.finish() }
    }

    @Test("a zstd stream cut short is an error at its end, never a short snapshot; whole, it decodes to what went in")
    func truncatedZstd() async throws {
        let plain = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let encoded = try await collect(Chunks(pieces: [plain]).through(try Encoding(SnapshotEncodingPlan(compressionLevel: 3))))
        let encoding = SnapshotEncoding(compressed: true, encrypted: false)
        #expect(try await collect(Chunks(pieces: [encoded]).through(try Decoding(encoding, identities: []))) == plain)
        await #expect(throws: (any Error).self) {
            _ = try await collect(Chunks(pieces: [Array(encoded.dropLast(4))]).through(try Decoding(encoding, identities: [])))
        }
    }

    @Test("an age stream cut short is an error, and only a recipient's identity decrypts it")
    func truncatedAge() async throws {
        let identity = AgeIdentity()
        let plain = Array(repeating: UInt8(42), count: 100_000)
        let encoded = try await collect(Chunks(pieces: [plain]).through(try Encoding(SnapshotEncodingPlan(recipients: [identity.recipient]))))
        let encoding = SnapshotEncoding(compressed: false, encrypted: true)
        #expect(try await collect(Chunks(pieces: [encoded]).through(try Decoding(encoding, identities: [identity]))) == plain)
        await #expect(throws: (any Error).self) {
            _ = try await collect(Chunks(pieces: [Array(encoded.dropLast(20))]).through(try Decoding(encoding, identities: [identity])))
        }
        await #expect(throws: (any Error).self) {
            _ = try await collect(Chunks(pieces: [encoded]).through(try Decoding(encoding, identities: [AgeIdentity()])))
        }
    }

    /// A sound bbolt database of `pages` pages with etcd's SHA-256 trailer.
    func snapshot(pages: Int = 16) -> [UInt8] {
        var body = BboltLayout.emptyDatabasePrefix(pageCount: pages)
        body += Array(repeating: 0, count: pages * 4096 - body.count)
        return body + Array(SHA256.hash(data: body))
    }

    @Test("the snapshot checks pass a sound snapshot in any chunking and report its size, SHA-256 and structure")
    func soundSnapshot() async throws {
        let bytes = snapshot()
        for size in [1, 31, 1024, 5000, bytes.count] {
            let checks = SnapshotChecks()
            let pieces = stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
            #expect(try await collect(checks.apply(toUnverified: Chunks(pieces: pieces))) == bytes)
            let result = try checks.result()
            #expect(result.size == Int64(bytes.count))
            #expect(result.sha256 == SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
            #expect(result.totalKeys == 0)
        }
    }

    @Test("the snapshot checks refuse a wrong trailer and a damaged structure with a matching trailer; no result is given")
    func damagedSnapshot() async throws {
        var wrongTrailer = snapshot()
        wrongTrailer[wrongTrailer.count - 1] ^= 1
        let first = SnapshotChecks()
        await #expect(throws: SnapshotCorrupt.self) { _ = try await collect(first.apply(toUnverified: Chunks(pieces: [wrongTrailer]))) }
        #expect(throws: PipelineFailure.self) { _ = try first.result() }

        var body = Array(snapshot().dropLast(32))
        body[16] ^= 0xff  // the first meta page's magic
        body[4096 + 16] ^= 0xff  // and the second's
        let damaged = body + Array(SHA256.hash(data: body))
        let second = SnapshotChecks()
        await #expect(throws: BboltInvalid.self) { _ = try await collect(second.apply(toUnverified: Chunks(pieces: [damaged]))) }
        #expect(throws: PipelineFailure.self) { _ = try second.result() }
    }
}
