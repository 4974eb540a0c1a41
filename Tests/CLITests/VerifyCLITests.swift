import Crypto
import Foundation
import TestSupport
import Testing

/// `talos-etcd-backup verify --from FILE`: every check of a restore, nothing written; the
/// revision and key count it prints are etcdctl's.
@Suite("talos-etcd-backup verify --from FILE")
struct VerifyCLITests {
    @Test("a sound backup (plain or zstd+age) exits 0 naming etcdctl's revision and total keys and writes nothing; a damaged meta page with a recomputed trailer, a wrong identity: exit 1 naming the problem")
    func verify() async throws {
        let fixture = try await RestoreCLITests.fixture()
        defer { removeTemporaryDirectory(fixture.directory) }
        let plain = fixture.snapshot.path
        let status = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", plain, "-w", "json"])
        let json = try #require(try JSONSerialization.jsonObject(with: status.stdoutData) as? [String: Any])
        let revision = try #require((json["revision"] as? NSNumber)?.int64Value), keys = try #require((json["totalKey"] as? NSNumber)?.int64Value)
        try await RestoreCLITests.shell("zstd -q -c \(plain) | age -r \(fixture.recipient) > \(fixture.path("x.db.zst.age"))")
        let before = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).sorted()
        for (name, extra) in [(plain, [String]()), (fixture.path("x.db.zst.age"), ["--identity", fixture.identity.path])] {
            let result = try await CLI.run(with: ["verify", "--from", name] + extra)
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(result.stdout.contains("etcd revision \(revision), \(keys) keys"), "\(result.stdout)")
            #expect(result.stdout.contains("no record to compare with"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).sorted() == before, "nothing written")

        // Meta page 0's root flipped, the trailer recomputed: only the structure check sees it.
        var damaged = try Data(contentsOf: fixture.snapshot)
        damaged[16 + 16] ^= 0x40
        damaged = damaged.prefix(damaged.count - 32) + Data(SHA256.hash(data: damaged.prefix(damaged.count - 32)))
        try damaged.write(to: URL(fileURLWithPath: fixture.path("damaged.db")))
        let other = fixture.path("other-key.txt")
        try await RestoreCLITests.shell("age-keygen -o \(other) 2>/dev/null")
        let cases: [(String, [String], String)] = [
            ("damaged meta page", ["--from", fixture.path("damaged.db")], "not a sound bbolt database: meta page 0: its FNV-64a checksum does not match"),
            ("wrong identity", ["--from", fixture.path("x.db.zst.age"), "--identity", other], "no identity matches"),
        ]
        for (what, arguments, message) in cases {
            let result = try await CLI.run(with: ["verify"] + arguments)
            #expect(result.status == 1, "\(what)")
            #expect(result.stderr.contains("did not verify") && result.stderr.contains(message), "\(what): \(result.stderr)")
        }
    }

    @Test("--expect-sha256 pins the stored object: its hash (any case) verifies and says so; another exits 1 naming both; one that is not 64 hex digits is refused")
    func pinned() async throws {
        let fixture = try await RestoreCLITests.fixture()
        defer { removeTemporaryDirectory(fixture.directory) }
        let plain = fixture.snapshot.path
        let sha256 = try RestoreCLITests.sha256(plain)
        let matching = try await CLI.run(with: ["verify", "--from", plain, "--expect-sha256", sha256.uppercased()])
        #expect(matching.status == 0, "\(matching.stderr)")
        #expect(matching.stdout.contains("the stored object's SHA-256 is \(sha256), as --expect-sha256 pins it"), "\(matching.stdout)")
        let other = String(repeating: "ab", count: 32)
        let mismatch = try await CLI.run(with: ["verify", "--from", plain, "--expect-sha256", other])
        #expect(mismatch.status == 1)
        #expect(mismatch.stderr.contains("the stored object's SHA-256 is \(sha256), not \(other) (--expect-sha256)"), "\(mismatch.stderr)")
        let restored = fixture.path("pinned.db")
        let refusedRestore = try await CLI.run(with: ["restore", "--from", plain, "--expect-sha256", other, "--output", restored])
        #expect(refusedRestore.status == 1 && !FileManager.default.fileExists(atPath: restored), "no output for another object")
        for malformed in ["abc", String(repeating: "g", count: 64), String(repeating: "0", count: 65)] {
            let result = try await CLI.run(with: ["verify", "--from", plain, "--expect-sha256", malformed])
            #expect(result.status == 64, "\(malformed)")
            #expect(result.stderr.contains("--expect-sha256 must be 64 hexadecimal digits"), "\(result.stderr)")
        }
    }
}
