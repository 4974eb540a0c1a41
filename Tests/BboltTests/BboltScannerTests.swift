import Bbolt
import Crypto
import Foundation
import TestSupport
import Testing

/// The scanner against the real tool: snapshots of a real etcd, read in pieces of odd sizes,
/// give the revision and total keys `etcdctl snapshot status` reports; damage it cannot see by
/// the SHA-256 trailer (recomputed) is rejected.
@Suite("bbolt: an etcd snapshot's structure, against etcdctl snapshot status")
struct BboltScannerTests {
    struct Status: Decodable { var revision: Int64; var totalKey: Int64 }

    /// Runs etcdctl against `etcd` with `stdin`, requiring success.
    static func etcdctl(_ etcd: EtcdInstance, _ arguments: [String], stdin: String? = nil) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["ETCDCTL_API"] = "3"
        let result = try await ProcessRunner.run("/usr/bin/etcdctl", ["--endpoints", etcd.clientURL] + arguments,
                                                 environment: environment, stdin: stdin.map { Data($0.utf8) })
        try #require(result.status == 0, "etcdctl \(arguments.first ?? ""): \(result.stderr)")
    }

    /// Thousands of keys (in transactions of 100), large values (overflow pages), deletions, a
    /// compaction and leases (a second bucket with entries), then a snapshot.
    static func snapshot(name: String) async throws -> URL {
        let directory = try makeTemporaryDirectory("bbolt")
        let file = directory.appendingPathComponent(name)
        do {
            try await fill(snapshot: file)
        } catch {
            removeTemporaryDirectory(directory)
            throw error
        }
        return file
    }

    private static func fill(snapshot file: URL) async throws {
        try await EtcdInstance.withRunning(keys: 0) { etcd in
            for batch in 0..<40 {
                let puts = (0..<100).map { "put /registry/pods/ns-\(batch)/pod-\($0) \"spec-\(batch)-\($0)-\(String(repeating: "y", count: 40 + $0))\"" }
                try await etcdctl(etcd, ["txn"], stdin: "\n" + puts.joined(separator: "\n") + "\n\n\n")
            }
            for large in 0..<6 {
                let value = String(repeating: "large value \(large) ", count: 20_000)  // about 300 KB: overflow pages
                try await etcdctl(etcd, ["put", "/registry/configmaps/big-\(large)"], stdin: value)
            }
            try await etcdctl(etcd, ["del", "--prefix", "/registry/pods/ns-3/"])
            for batch in 0..<5 {  // overwritten: old revisions stay until the compaction
                let puts = (0..<100).map { "put /registry/pods/ns-\(batch)/pod-\($0) \"v2\"" }
                try await etcdctl(etcd, ["txn"], stdin: "\n" + puts.joined(separator: "\n") + "\n\n\n")
            }
            try await etcdctl(etcd, ["compact", "30"])  // a transaction is one revision: about 52 by now
            for lease in 0..<20 {
                let grant = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd.clientURL, "lease", "grant", "3600"])
                let id = try #require(grant.stdout.split(separator: " ").dropFirst().first.map(String.init), "\(grant.stdout)")
                try await etcdctl(etcd, ["put", "--lease", id, "/registry/leases/l-\(lease)", "held"])
            }
            let saved = try await etcd.etcdctl(["snapshot", "save", file.path])
            try #require(saved.status == 0, "\(saved.stderr)")
        }
    }

    static func status(_ file: URL) async throws -> Status {
        let result = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", file.path, "-w", "json"])
        try #require(result.status == 0, "\(result.stderr)")
        return try JSONDecoder().decode(Status.self, from: Data(result.stdout.utf8))
    }

    /// Scans `bytes` fed in pieces of odd, varying sizes.
    static func scan(_ bytes: [UInt8]) throws -> (BboltSummary, indexBytes: Int, assembled: Int) {
        var scanner = BboltSnapshotScanner()
        var offset = 0, piece = 1
        while offset < bytes.count {
            let end = min(bytes.count, offset + piece)
            try scanner.feed(bytes[offset..<end])
            offset = end
            piece = piece * 7 % 70_001 + 1
        }
        let summary = try scanner.finish()
        return (summary, scanner.indexBytes, scanner.assembledPages)
    }

    /// `bytes` with its last 32 bytes replaced by the SHA-256 of the rest, as etcd writes it.
    static func retrailed(_ bytes: [UInt8]) -> [UInt8] {
        let body = bytes.dropLast(32)
        return Array(body) + Array(SHA256.hash(data: Data(body)))
    }

    static func uint64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }

    @Test("revision and total keys equal etcdctl's for a snapshot with thousands of keys, large values, deletions, a compaction and leases")
    func matchesEtcdctl() async throws {
        let file = try await Self.snapshot(name: "many.db")
        defer { removeTemporaryDirectory(file.deletingLastPathComponent()) }
        let expected = try await Self.status(file)
        let bytes = [UInt8](try Data(contentsOf: file))
        let (summary, indexBytes, assembled) = try Self.scan(bytes)
        #expect(assembled >= 2, "the large values' pages (a leaf holds at least two elements) span several blocks: \(assembled) assembled")
        #expect(summary.revision == expected.revision)
        #expect(summary.totalKeys == expected.totalKey)
        #expect(summary.totalKeys > 3_900, "\(summary.totalKeys)")
        #expect(summary.buckets.contains("key") && summary.buckets.contains("lease") && summary.buckets.contains("meta"), "\(summary.buckets)")
        // The index is a small fraction of the snapshot.
        #expect(indexBytes < bytes.count / 50, "\(indexBytes) bytes of index for \(bytes.count)")

        // A snapshot of an etcd holding 20 keys, and one of an empty etcd.
        for keys in [0, 20] {
            let small = FileManager.default.temporaryDirectory.appendingPathComponent("bbolt-small-\(UUID().uuidString.prefix(8)).db")
            defer { try? FileManager.default.removeItem(at: small) }
            try await EtcdInstance.withRunning(keys: keys) { etcd in
                let saved = try await etcd.etcdctl(["snapshot", "save", small.path])
                try #require(saved.status == 0)
            }
            let (smallSummary, _, _) = try Self.scan([UInt8](try Data(contentsOf: small)))
            let smallExpected = try await Self.status(small)
            #expect(smallSummary.revision == smallExpected.revision && smallSummary.totalKeys == smallExpected.totalKey, "\(keys) keys")
        }
    }

    @Test("a damaged meta page, a damaged branch page, a cut file, not a bbolt file: rejected, though the SHA-256 trailer matches")
    func damage() async throws {
        let file = try await Self.snapshot(name: "damage.db")
        defer { removeTemporaryDirectory(file.deletingLastPathComponent()) }
        let bytes = [UInt8](try Data(contentsOf: file))
        let pageSize = Int(UInt32(bytes[24]) | UInt32(bytes[25]) << 8 | UInt32(bytes[26]) << 16 | UInt32(bytes[27]) << 24)

        // Meta page 1's txid changed: its checksum no longer matches.
        var meta = bytes
        meta[pageSize + 16 + 48] ^= 0x01
        let metaError = #expect(throws: BboltInvalid.self) { try Self.scan(Self.retrailed(meta)) }
        #expect(metaError?.reason.contains("meta page 1") == true, "\(String(describing: metaError))")

        // The `key` bucket's root, found independently of the scanner: meta 0's root bucket
        // page, its "key" entry's root page, which with thousands of keys is a branch page.
        let root = Int(Self.uint64(bytes, 16 + 16))
        let rootPage = root * pageSize
        let count = Int(UInt16(bytes[rootPage + 10]) | UInt16(bytes[rootPage + 11]) << 8)
        var keyRoot: Int?
        for element in 0..<count {
            let at = rootPage + 16 + element * 16
            let position = Int(Self.uint64(bytes, at + 4) & 0xFFFF_FFFF), keySize = Int(Self.uint64(bytes, at + 8) & 0xFFFF_FFFF)
            let key = bytes[(at + position)..<(at + position + keySize)]
            if Array(key) == Array("key".utf8) { keyRoot = Int(Self.uint64(bytes, at + position + keySize)) }
        }
        let branch = try #require(keyRoot) * pageSize
        #expect(bytes[branch + 8] == 0x01, "the key bucket's root is a branch page")
        // Its first child now points at a page beyond the file.
        var damaged = bytes
        for index in 0..<8 { damaged[branch + 16 + 8 + index] = 0x7F }
        let branchError = #expect(throws: BboltInvalid.self) { try Self.scan(Self.retrailed(damaged)) }
        #expect(branchError?.reason.contains("outside the pages in use") == true, "\(String(describing: branchError))")
        // Its first child pointing at its second: a page reached twice.
        var shared = bytes
        for index in 0..<8 { shared[branch + 16 + 8 + index] = bytes[branch + 32 + 8 + index] }
        #expect(throws: BboltInvalid.self) { try Self.scan(Self.retrailed(shared)) }

        // Cut in the middle of a page; not a bbolt file at all.
        #expect(throws: BboltInvalid.self) { try Self.scan(Array(bytes.prefix(bytes.count / 2 + 100))) }
        #expect(throws: BboltInvalid.self) { try Self.scan(Array(repeating: 0x41, count: 100_000)) }
        // The undamaged file passes, trailer and all.
        _ = try Self.scan(bytes)
    }

    @Test("the minimal layout test doubles put in front of generated bytes passes the scanner and etcdctl snapshot status")
    func minimalLayout() async throws {
      for pageCount in [64, 70_000] {  // the second needs a freelist with overflow pages and a 0xFFFF count
        var bytes = BboltLayout.emptyDatabasePrefix(pageCount: pageCount)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        // Free pages: random bytes for the first 64 pages, zeros after (quicker to make).
        while bytes.count < min(pageCount, 64) * 4096 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes.append(UInt8(truncatingIfNeeded: state >> 56))
        }
        bytes += [UInt8](repeating: 0, count: max(0, pageCount * 4096 - bytes.count))
        bytes += Array(SHA256.hash(data: Data(bytes)))
        let (summary, _, _) = try Self.scan(bytes)
        #expect(summary.revision == 0 && summary.totalKeys == 0 && summary.buckets == ["key"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bbolt-minimal-\(UUID().uuidString.prefix(8)).db")
        try Data(bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let status = try await Self.status(file)
        #expect(status.revision == 0 && status.totalKey == 0)
      }
    }
}
