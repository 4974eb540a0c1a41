import Crypto
import Foundation
import NIOCore
import TalosAPI
import TestSupport
import Testing

func collect<S: AsyncSequence>(_ sequence: S) async throws -> [UInt8] where S.Element == ByteBuffer {
    var bytes: [UInt8] = []
    for try await chunk in sequence { bytes += chunk.readableBytesView }
    return bytes
}

@Suite("Verified etcd snapshot stream, with a real etcd")
struct SnapshotStreamTests {
    /// A snapshot from a real etcd holding keys k0..k99.
    static func realSnapshot() async throws -> [UInt8] {
        let etcd = try await EtcdInstance.start()
        for index in 0..<100 { _ = try await etcd.etcdctl(["put", "k\(index)", "value-\(index)"]) }
        let file = etcd.directory.appendingPathComponent("snapshot.db")
        let saved = try await etcd.etcdctl(["snapshot", "save", file.path])
        let bytes = saved.status == 0 ? try Data(contentsOf: file) : Data()
        await etcd.stop()  // removes its directory, the snapshot file with it
        try #require(saved.status == 0, "etcdctl snapshot save failed: \(saved.stderr)")
        return Array(bytes)
    }

    @Test("passes a real snapshot through unchanged, in any chunking; the result restores and serves the keys")
    func realSnapshotPasses() async throws {
        let snapshot = try await Self.realSnapshot()
        let wholeSHA256 = Array(SHA256.hash(data: snapshot))
        for size in [1, 7, 31, 32, 33, 4096, snapshot.count] {
            let digest = SnapshotDigest()
            let passed = try await collect(VerifiedSnapshotStream(ChunkedBytes(data: snapshot, size: size)).reportingDigest(to: digest))
            #expect(passed == snapshot, "chunk size \(size)")
            #expect(digest.sha256 == wholeSHA256, "the digest covers every byte released, trailer included (chunk size \(size))")
        }
        // What came out restores into a fresh etcd that serves the keys written before.
        let restored = try await collect(VerifiedSnapshotStream(ChunkedBytes(data: snapshot, size: 4096)))
        let directory = try makeTemporaryDirectory("restore")
        defer { removeTemporaryDirectory(directory) }
        let file = directory.appendingPathComponent("restored.db")
        try Data(restored).write(to: file)
        let status = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", file.path, "-w", "json"])
        #expect(status.status == 0, "\(status.stderr)")
        let value = try await EtcdInstance.restoring(file).stopping { try await $0.etcdctl(["get", "k42", "--print-value-only"]) }
        #expect(value.stdout == "value-42\n")
    }

    @Test("one corrupted byte anywhere is SnapshotCorrupt, and the trailer is never released")
    func corruptByte() async throws {
        let snapshot = try await Self.realSnapshot()
        for position in [0, snapshot.count / 2, snapshot.count - 33, snapshot.count - 1] {
            var corrupted = snapshot
            corrupted[position] ^= 0x01
            var released: [UInt8] = []
            let digest = SnapshotDigest()
            await #expect(throws: SnapshotCorrupt(reason: "the SHA-256 of its contents does not match the 32-byte trailer")) {
                for try await chunk in VerifiedSnapshotStream(ChunkedBytes(data: corrupted, size: 1000)).reportingDigest(to: digest) {
                    released += chunk.readableBytesView
                }
            }
            #expect(released.count == snapshot.count - 32)  // everything but the trailer
            #expect(digest.sha256 == nil, "a corrupt snapshot gets no digest")
        }
    }

    @Test("a truncated or tiny stream is SnapshotCorrupt; a broken source's error comes through")
    func shortAndBroken() async throws {
        let snapshot = try await Self.realSnapshot()
        await #expect(throws: SnapshotCorrupt.self) {
            _ = try await collect(VerifiedSnapshotStream(ChunkedBytes(data: Array(snapshot.dropLast(10)), size: 512)))
        }
        await #expect(throws: SnapshotCorrupt(reason: "the stream ended after 20 bytes, too short to carry the 32-byte SHA-256 trailer")) {
            _ = try await collect(VerifiedSnapshotStream(ChunkedBytes(data: Array(snapshot.prefix(20)), size: 512)))
        }
        await #expect(throws: SnapshotCorrupt.self) {
            _ = try await collect(VerifiedSnapshotStream(ChunkedBytes(data: [], size: 512)))
        }
        await #expect(throws: ChunkedBytes.Broken.self) {
            _ = try await collect(VerifiedSnapshotStream(ChunkedBytes(data: snapshot, size: 512, failAfter: 4096)))
        }
    }
}
