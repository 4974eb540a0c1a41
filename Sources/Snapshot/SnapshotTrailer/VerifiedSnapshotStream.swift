import Crypto
import NIOCore
import Synchronization

/// Receives the SHA-256 of everything a ``VerifiedSnapshotStream`` released, trailer
/// included (the stored object's hash), computed in the same pass as the trailer check: a
/// consumer that stores the bytes need not hash them again.
public final class SnapshotDigest: Sendable {
    private let value = Mutex<[UInt8]?>(nil)

    public init() {}

    /// Set once the stream has ended and its trailer matched; nil before.
    public var sha256: [UInt8]? { value.withLock { $0 } }

    func set(_ digest: [UInt8]) { value.withLock { $0 = digest } }
}

/// The snapshot was not what etcd sent: its trailing SHA-256 does not match, or it is too
/// short to carry one, or the stream broke before the end.
public struct SnapshotCorrupt: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public init(reason: String) { self.reason = reason }

    public var description: String { "etcd snapshot is corrupt: \(reason)" }
}

/// An etcd snapshot ends with a 32-byte SHA-256 of everything before it. This sequence passes
/// the snapshot's bytes through unchanged (trailer included: `etcdctl snapshot restore` checks
/// it) while hashing them, and holds the last 32 bytes back until the stream ends: only when
/// they match is the rest released, so a consumer (an upload) never receives a complete-looking
/// snapshot that is wrong. A mismatch, or a stream shorter than 32 bytes, throws
/// ``SnapshotCorrupt``; an error of the underlying stream is rethrown as it is, never turned
/// into a silently short snapshot.
public struct VerifiedSnapshotStream<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = ByteBuffer
    let base: Base

    let onFirst: (@Sendable () -> Void)?
    let digest: SnapshotDigest?

    public init(_ base: Base) {
        self.init(base, onFirst: nil, digest: nil)
    }

    private init(_ base: Base, onFirst: (@Sendable () -> Void)?, digest: SnapshotDigest?) {
        self.base = base
        self.onFirst = onFirst
        self.digest = digest
    }

    /// The same stream, calling `action` when the first bytes arrive from the source.
    public func onFirstChunk(_ action: @escaping @Sendable () -> Void) -> Self {
        Self(base, onFirst: action, digest: digest)
    }

    /// The same stream, handing the SHA-256 of all it released to `digest` at its end.
    public func reportingDigest(to digest: SnapshotDigest) -> Self {
        Self(base, onFirst: onFirst, digest: digest)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: base.makeAsyncIterator(), onFirst: onFirst, digest: digest)
    }

    public struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var hasher = SHA256()
        /// The last up-to-32 bytes seen, not yet released.
        var held = ByteBuffer()
        var finished = false
        /// Total bytes, trailer included, once the stream has ended and verified.
        public private(set) var verifiedSize: Int?

        var onFirst: (@Sendable () -> Void)?
        let digest: SnapshotDigest?

        init(base: Base.AsyncIterator, onFirst: (@Sendable () -> Void)?, digest: SnapshotDigest?) {
            self.base = base
            self.onFirst = onFirst
            self.digest = digest
        }

        /// Bytes already known to be releasable, handed out before reading further.
        var pending: ByteBuffer?

        public mutating func next() async throws -> ByteBuffer? {
            if let ready = pending {
                pending = nil
                return release(ready)
            }
            guard !finished else { return nil }
            while let chunk = try await base.next() {
                guard chunk.readableBytes > 0 else { continue }
                if let onFirst {
                    onFirst()
                    self.onFirst = nil
                }
                if chunk.readableBytes >= 32 {
                    // The chunk's own last 32 bytes are the new held-back tail; everything
                    // before them is released without copying (a slice of the same storage).
                    // The tail of a small chunk (Talos sends 1 KiB) is held as a slice too;
                    // a large chunk's is copied, so its storage is not kept alive for 32 bytes.
                    let previous = held
                    let body = chunk.getSlice(at: chunk.readerIndex, length: chunk.readableBytes - 32)!
                    let tail = chunk.getSlice(at: chunk.readerIndex + chunk.readableBytes - 32, length: 32)!
                    held = chunk.readableBytes <= 64 * 1024 ? tail : ByteBuffer(buffer: tail)
                    if previous.readableBytes > 0 {
                        if body.readableBytes > 0 { pending = body }
                        return release(previous)
                    }
                    if body.readableBytes > 0 { return release(body) }
                    continue
                }
                // A small chunk: join it to the tail (at most 63 bytes) and keep the last 32.
                var combined = held
                var incoming = chunk
                combined.writeBuffer(&incoming)
                let releasable = combined.readableBytes - 32
                guard releasable > 0 else {
                    held = combined
                    continue
                }
                let released = combined.readSlice(length: releasable)!
                held = ByteBuffer(buffer: combined)
                return release(released)
            }
            finished = true
            guard held.readableBytes == 32 else {
                throw SnapshotCorrupt(reason: "the stream ended after \(totalReleased + held.readableBytes) bytes, too short to carry the 32-byte SHA-256 trailer")
            }
            var whole = hasher  // the contents' hash state, to go on with the trailer
            let expected = Array(hasher.finalize())
            let trailer = held.getBytes(at: held.readerIndex, length: 32)!
            guard expected == trailer else {
                throw SnapshotCorrupt(reason: "the SHA-256 of its contents does not match the 32-byte trailer")
            }
            if let digest {
                whole.update(data: trailer)
                digest.set(Array(whole.finalize()))
            }
            return held
        }

        var totalReleased = 0

        /// Hashes `bytes` (in release order) and hands them out.
        private mutating func release(_ bytes: ByteBuffer) -> ByteBuffer {
            bytes.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            totalReleased += bytes.readableBytes
            return bytes
        }
    }
}

extension ByteBuffer {
    /// A copy holding only the readable bytes of `buffer`.
    init(buffer: ByteBuffer) {
        var copy = ByteBufferAllocator().buffer(capacity: buffer.readableBytes)
        var source = buffer
        copy.writeBuffer(&source)
        self = copy
    }
}
