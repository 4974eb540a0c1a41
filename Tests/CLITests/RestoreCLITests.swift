import Crypto
import Foundation
import TestSupport
import Testing

/// `talos-etcd-backup restore --from FILE` on objects made by the `zstd` and `age` CLIs from a
/// real etcd snapshot: the output restores with etcdctl; damage and a wrong or missing identity
/// leave no output file.
@Suite("talos-etcd-backup restore --from FILE")
struct RestoreCLITests {
    struct Fixture {
        var directory: URL
        var snapshot: URL
        var identity: URL
        var recipient: String
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    }

    /// A real snapshot of an etcd holding k0..k19, and an age key pair from age-keygen.
    static func fixture() async throws -> Fixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("restore-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let snapshot = directory.appendingPathComponent("backup.db")
        try await EtcdInstance.withRunning { etcd in
            let saved = try await etcd.etcdctl(["snapshot", "save", snapshot.path])
            try #require(saved.status == 0, "\(saved.stderr)")
        }
        let identity = directory.appendingPathComponent("key.txt")
        let keygen = try await ProcessRunner.run("/usr/bin/age-keygen", ["-o", identity.path])
        try #require(keygen.status == 0)
        let recipient = try #require(keygen.stderr.split(separator: " ").last).trimmingCharacters(in: .whitespacesAndNewlines)
        return Fixture(directory: directory, snapshot: snapshot, identity: identity, recipient: recipient)
    }

    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    static func shell(_ command: String) async throws {
        let result = try await ProcessRunner.run("/bin/sh", ["-c", command])
        try #require(result.status == 0, "\(command): \(result.stderr)")
    }

    @Test(".db, .db.zst, .db.age and .db.zst.age made with the CLIs come back as the snapshot, which etcdctl restores")
    func everyEncoding() async throws {
        let fixture = try await Self.fixture()
        let plain = fixture.snapshot.path
        try await Self.shell("cp \(plain) \(fixture.path("a.db"))")
        try await Self.shell("zstd -q -3 -c \(plain) > \(fixture.path("b.db.zst"))")
        try await Self.shell("age -r \(fixture.recipient) -o \(fixture.path("c.db.age")) \(plain)")
        try await Self.shell("zstd -q -c \(plain) | age -r \(fixture.recipient) > \(fixture.path("d.db.zst.age"))")
        for name in ["a.db", "b.db.zst", "c.db.age", "d.db.zst.age"] {
            let output = fixture.path("\(name).restored")
            let result = try await CLI.run(with: ["restore", "--from", fixture.path(name), "--identity", fixture.identity.path, "--output", output])
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(try Self.sha256(output) == Self.sha256(plain), "\(name)")
            #expect(result.stdout.contains("etcd's trailer and the bbolt structure checked"))
            #expect(!result.stdout.contains("AGE-SECRET-KEY") && !result.stderr.contains("AGE-SECRET-KEY"), "the identity is never printed")
        }
        let restored = try await EtcdInstance.restoring(URL(fileURLWithPath: fixture.path("d.db.zst.age.restored")))
        let value = try await restored.etcdctl(["get", "k7", "--print-value-only"])
        await restored.stop()
        #expect(value.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "value-7")
    }

    @Test("a wrong identity, a missing one, a flipped byte, a truncated object, a corrupt snapshot: a clear error and no output file")
    func failures() async throws {
        let fixture = try await Self.fixture()
        let plain = fixture.snapshot.path
        try await Self.shell("zstd -q -c \(plain) | age -r \(fixture.recipient) > \(fixture.path("x.db.zst.age"))")
        let other = fixture.path("other-key.txt")
        try await Self.shell("age-keygen -o \(other) 2>/dev/null")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: fixture.path("x.db.zst.age"))[.size] as? Int)
        try await Self.shell("cp \(fixture.path("x.db.zst.age")) \(fixture.path("flipped.db.zst.age")) && printf '\\377' | dd of=\(fixture.path("flipped.db.zst.age")) bs=1 seek=\(size / 2) conv=notrunc 2>/dev/null")
        try await Self.shell("head -c \(size - 20) \(fixture.path("x.db.zst.age")) > \(fixture.path("short.db.zst.age"))")
        try await Self.shell("cp \(plain) \(fixture.path("bad.db")) && printf '\\377' | dd of=\(fixture.path("bad.db")) bs=1 seek=100 conv=notrunc 2>/dev/null")
        let cases: [(String, [String], String)] = [
            ("wrong identity", ["--from", fixture.path("x.db.zst.age"), "--identity", other], "no identity matches"),
            ("no identity", ["--from", fixture.path("x.db.zst.age")], "is encrypted (.age): pass --identity"),
            ("flipped byte", ["--from", fixture.path("flipped.db.zst.age"), "--identity", fixture.identity.path], "damaged"),
            ("truncated", ["--from", fixture.path("short.db.zst.age"), "--identity", fixture.identity.path], "damaged"),
            ("corrupt snapshot", ["--from", fixture.path("bad.db")], "etcd snapshot is corrupt"),
            ("unknown name", ["--from", plain + ".gz"], "must end in .db"),
            ("two sources", ["--from", plain, "--backup", "b"], "exactly one of --backup NAME and --from"),
            ("no source", [], "exactly one of --backup NAME and --from"),
            ("namespace without --backup", ["--from", plain, "--namespace", "x"], "--namespace and --kubeconfig go with --backup"),
            ("s3 without credentials", ["--from", "s3://bucket/key.db"], "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            ("s3 without a key", ["--from", "s3://bucket"], "expected s3://BUCKET/KEY"),
        ]
        for (name, arguments, message) in cases {
            let output = fixture.path("out-\(name.replacingOccurrences(of: " ", with: "-")).db")
            var environment = ProcessInfo.processInfo.environment
            environment["AWS_ACCESS_KEY_ID"] = nil
            environment["AWS_SECRET_ACCESS_KEY"] = nil
            let result = try await CLI.run(with: ["restore"] + arguments + ["--output", output], environment: environment)
            #expect(result.status != 0, "\(name)")
            #expect(result.stderr.contains(message), "\(name): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output), "\(name): no output file")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).filter { $0.contains(".partial-") }
            #expect(leftovers.isEmpty, "\(name): no temporary file left: \(leftovers)")
        }
    }
}
