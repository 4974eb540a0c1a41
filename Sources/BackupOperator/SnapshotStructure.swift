import Bbolt
import NIOCore
import Synchronization

/// What a snapshot's bbolt structure showed once it had streamed past: the evidence, recorded
/// with each backup, that it holds a sound etcd database (and which revision).
public final class SnapshotStructure: Sendable {
    private let value = Mutex<BboltSummary?>(nil)

    public init() {}

    /// Set when the stream ended and the structure checked out; nil before.
    public var summary: BboltSummary? { value.withLock { $0 } }

    func set(_ summary: BboltSummary) { value.withLock { $0 = summary } }
}

/// A plain etcd snapshot's bytes passed through unchanged while ``BboltSnapshotScanner`` reads
/// them. When the base ends, the trees are resolved: a snapshot whose meta pages or trees do
/// not check out ends the sequence with ``BboltInvalid`` instead of its end, so a consumer (an
/// upload, a restore's file, a recovery upload) never completes with it. The summary goes to
/// ``structure``. Iterated once.
struct StructureCheckedChunks<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let structure: SnapshotStructure

    init(_ base: Base, reportingTo structure: SnapshotStructure) {
        self.base = base
        self.structure = structure
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var scanner = BboltSnapshotScanner()
        let structure: SnapshotStructure
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            guard !finished else { return nil }
            guard let chunk = try await base.next() else {
                finished = true
                structure.set(try scanner.finish())
                return nil
            }
            try scanner.feed(chunk.readableBytesView)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), structure: structure)
    }
}

extension StructureCheckedChunks: Sendable where Base: Sendable {}
