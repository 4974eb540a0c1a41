import Bbolt
import NIOCore
import S3
import Synchronization
import TalosAPI

/// What a plain snapshot proved once it had streamed past every check: its size and SHA-256
/// (trailer included, as stored), and the etcd revision and total keys its bbolt structure
/// holds: the evidence recorded with each backup.
public struct CheckedSnapshot: Sendable, Equatable {
    public var size: Int64
    public var sha256: String
    public var revision: Int64
    public var totalKeys: Int64
}

/// Every check a backup makes of a plain etcd snapshot, applied to a stream as it passes: etcd's
/// SHA-256 trailer (``VerifiedSnapshotStream``: the last 32 bytes are held back until they
/// match), then the bbolt structure (``BboltSnapshotScanner``: meta pages and B+trees resolved
/// at the end). A snapshot that fails either ends the stream with ``SnapshotCorrupt`` or
/// ``BboltInvalid`` instead of its end, so a consumer (an upload, a file, a recovery upload)
/// never completes with it. The trailer check's own hash is the snapshot's SHA-256: nothing
/// hashes the bytes twice. The one home of these checks: a scheduled backup, `snapshot
/// --output`, a read-back of a stored plain object and every restore use it.
public final class SnapshotChecks: Sendable {
    private let digest = SnapshotDigest()
    private let summary = Mutex<(size: Int64, structure: BboltSummary)?>(nil)

    public init() {}

    /// A stream the Talos client has already put behind its trailer check, through the rest.
    public func apply<Base>(to verified: VerifiedSnapshotStream<Base>) -> StagedChunks<VerifiedSnapshotStream<Base>, StructureCheck> {
        verified.reportingDigest(to: digest).through(StructureCheck(checks: self))
    }

    /// Raw snapshot bytes (a file, a stored object) through every check.
    public func apply<Base: AsyncSequence & Sendable>(toUnverified plain: Base) -> StagedChunks<VerifiedSnapshotStream<Base>, StructureCheck> {
        apply(to: VerifiedSnapshotStream(plain))
    }

    /// What the stream proved; throws unless it ended with every check holding.
    public func result() throws -> CheckedSnapshot {
        guard let sha256 = digest.sha256, let (size, structure) = summary.withLock({ $0 }) else {
            throw PipelineFailure(.incomplete, "the snapshot stream ended before its checks finished")
        }
        return CheckedSnapshot(size: size, sha256: SigV4Signer.hex(sha256), revision: structure.revision, totalKeys: structure.totalKeys)
    }

    fileprivate func set(size: Int64, structure: BboltSummary) { summary.withLock { $0 = (size, structure) } }
}

/// The bbolt structure check of ``SnapshotChecks``: passes chunks through while the scanner
/// reads them, and resolves the trees when the stream ends.
public struct StructureCheck: ChunkStage {
    var scanner = BboltSnapshotScanner()
    var size: Int64 = 0
    let checks: SnapshotChecks

    fileprivate init(checks: SnapshotChecks) { self.checks = checks }

    public mutating func take(_ chunk: ByteBuffer) throws -> ByteBuffer? {
        try scanner.feed(chunk.readableBytesView)
        size += Int64(chunk.readableBytes)
        return chunk
    }

    public mutating func finish() throws -> ByteBuffer? {
        checks.set(size: size, structure: try scanner.finish())
        return nil
    }
}
