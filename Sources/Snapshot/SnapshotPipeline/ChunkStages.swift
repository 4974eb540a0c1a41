import Crypto
import NIOCore
import S3
import Synchronization

/// One step of the snapshot pipeline between a byte source and its consumer: a check that
/// passes chunks through (trailer, bbolt structure, digest, progress) or a coder that turns
/// them into others (zstd, age). Each step is a value fed in order by one task, so none of
/// them needs a lock; what a step learns (a digest, a summary) leaves through a ``StreamFacts``
/// box it was given. ``StagedChunks`` runs a step over an `AsyncSequence` of `ByteBuffer`s:
/// the one chunk combinator of the pipeline.
public protocol ChunkStage {
    /// The output for one input chunk (nil when the step holds it for now).
    mutating func take(_ chunk: ByteBuffer) throws -> ByteBuffer?
    /// More output before the next input, until nil (a decompressor's further pieces).
    mutating func more() throws -> ByteBuffer?
    /// The input ended: the step's own end checks, and what it still held (more follows
    /// through ``more()``). A step that throws here ends the sequence with that error, never
    /// with a clean end.
    mutating func finish() throws -> ByteBuffer?
}

extension ChunkStage {
    public mutating func more() throws -> ByteBuffer? { nil }
}

/// `base`'s chunks through `stage`, iterated once.
public struct StagedChunks<Base: AsyncSequence, Stage: ChunkStage>: AsyncSequence where Base.Element == ByteBuffer {
    public typealias Element = ByteBuffer
    let base: Base
    let stage: Stage

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var stage: Stage
        var ended = false
        /// The error that ended the sequence: every later call throws it again, so no caller
        /// can mistake a failed stream for a complete one.
        var failure: (any Error)?

        public mutating func next() async throws -> ByteBuffer? {
            if let failure { throw failure }
            do {
                while true {
                    if let output = try stage.more() { return output }
                    if ended { return nil }
                    guard let chunk = try await base.next() else {
                        ended = true
                        if let output = try stage.finish() { return output }
                        continue
                    }
                    if let output = try stage.take(chunk) { return output }
                }
            } catch {
                failure = error
                throw error
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), stage: stage) }
}

extension StagedChunks: Sendable where Base: Sendable, Stage: Sendable {}

extension AsyncSequence where Element == ByteBuffer {
    /// These chunks through `stage`.
    public func through<Stage: ChunkStage>(_ stage: Stage) -> StagedChunks<Self, Stage> {
        StagedChunks(base: self, stage: stage)
    }

    /// These chunks, calling `observe` with each one's size as it passes (progress, stall bounds).
    public func observed(_ observe: @escaping @Sendable (_ bytes: Int) -> Void) -> StagedChunks<Self, Observing> {
        through(Observing(observe: observe))
    }

    /// These chunks, their size and SHA-256 going to `facts` when they end.
    public func digested(into facts: StreamFacts) -> StagedChunks<Self, Digesting> {
        through(Digesting(facts: facts))
    }
}

/// Passes chunks through, reporting each one's size.
public struct Observing: ChunkStage, Sendable {
    let observe: @Sendable (_ bytes: Int) -> Void

    public mutating func take(_ chunk: ByteBuffer) throws -> ByteBuffer? {
        observe(chunk.readableBytes)
        return chunk
    }

    public mutating func finish() throws -> ByteBuffer? { nil }
}

/// Passes chunks through, hashing and counting them: the one streaming digest of the
/// pipeline for bytes that carry no check of their own (a stored encoded object). A plain
/// snapshot's digest comes from its trailer check instead (``SnapshotChecks``), which hashes
/// it anyway.
public struct Digesting: ChunkStage, Sendable {
    var hasher = SHA256()
    var size: Int64 = 0
    let facts: StreamFacts

    public mutating func take(_ chunk: ByteBuffer) throws -> ByteBuffer? {
        chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        size += Int64(chunk.readableBytes)
        facts.passed(chunk.readableBytes)
        return chunk
    }

    public mutating func finish() throws -> ByteBuffer? {
        facts.set(size: size, sha256: SigV4Signer.hex(hasher.finalize()))
        return nil
    }
}

/// What a stream's step learned, readable once the stream has ended: its size and hex SHA-256
/// (``Digesting``, ``SnapshotChecks``). Shared between the task that iterates and the one that
/// reads the result, hence the lock.
public final class StreamFacts: Sendable {
    private let value = Mutex<(sofar: Int64, digest: (size: Int64, sha256: String)?)>((0, nil))

    public init() {}

    /// Size and hex SHA-256; nil until the stream ended whole.
    public var digest: (size: Int64, sha256: String)? { value.withLock { $0.digest } }

    /// The bytes that have passed so far (progress, while the stream runs).
    public var bytesSoFar: Int64 { value.withLock { $0.sofar } }

    func passed(_ bytes: Int) { value.withLock { $0.sofar += Int64(bytes) } }

    func set(size: Int64, sha256: String) { value.withLock { $0.digest = (size, sha256) } }
}
