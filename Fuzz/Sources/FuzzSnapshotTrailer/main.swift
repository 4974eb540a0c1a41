import Crypto
import Dispatch
import NIOCore
import SnapshotTrailer

/// An etcd snapshot stream from a Talos node (a tenant's endpoint), cut into chunks of sizes
/// the input chooses (its first byte seeds them): the check releases exactly the input when
/// its last 32 bytes are the SHA-256 of the rest, and otherwise throws SnapshotCorrupt having
/// released none of the last 32 bytes. The input with its SHA-256 appended always passes, and
/// the digest reported is that of all it released.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSnapshotTrailer(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let seed = input.first else { return 0 }
    let bytes = Array(input.dropFirst())
    let sealed = bytes + SHA256.hash(data: bytes)

    let plain = check(bytes, seed: seed)
    let valid = bytes.count >= 32 && Array(SHA256.hash(data: bytes.dropLast(32))) == Array(bytes.suffix(32))
    if valid {
        precondition(plain.error == nil && plain.released == bytes, "a snapshot with a matching trailer was refused or changed")
    } else {
        precondition(plain.error is SnapshotCorrupt, "a snapshot without a matching trailer was not refused")
        precondition(plain.released.count <= max(0, bytes.count - 32) && plain.released == Array(bytes.prefix(plain.released.count)),
                     "a refused snapshot released its trailer, or other bytes")
    }
    let resealed = check(sealed, seed: seed)
    precondition(resealed.error == nil && resealed.released == sealed, "a snapshot with its SHA-256 appended was refused or changed")
    precondition(resealed.digest == Array(SHA256.hash(data: sealed)), "the digest reported is not that of the bytes released")
    return 0
}

/// Chunks of 0 to 99 bytes, in an order the seed decides (a linear congruential sequence).
struct Chunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    let seed: UInt8

    struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: ArraySlice<UInt8>
        var state: UInt32
        mutating func next() async -> ByteBuffer? {
            guard !bytes.isEmpty else { return nil }
            state = state &* 1_103_515_245 &+ 12_345
            let size = Swift.min(bytes.count, Int(state >> 16) % 100)
            defer { bytes = bytes.dropFirst(size) }
            return ByteBuffer(bytes: bytes.prefix(size))
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes[...], state: UInt32(seed)) }
}

struct Outcome: Sendable {
    var released: [UInt8] = []
    var error: (any Error)?
    var digest: [UInt8]?
}

/// Runs the check to its end on another thread and waits for it: libFuzzer calls this
/// function synchronously.
func check(_ bytes: [UInt8], seed: UInt8) -> Outcome {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var outcome = Outcome()
    Task {
        let digest = SnapshotDigest()
        var result = Outcome()
        do {
            for try await chunk in VerifiedSnapshotStream(Chunks(bytes: bytes, seed: seed)).reportingDigest(to: digest) {
                result.released += chunk.readableBytesView
            }
        } catch {
            result.error = error
        }
        result.digest = digest.sha256
        outcome = result
        done.signal()
    }
    done.wait()
    return outcome
}
