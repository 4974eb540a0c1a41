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

    /// A real snapshot of an etcd holding k0..k19, and an age key pair from age-keygen, in a
    /// directory of their own: `defer { removeTemporaryDirectory(fixture.directory) }`.
    static func fixture() async throws -> Fixture {
        let directory = try makeTemporaryDirectory("restore")
        do {
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
        } catch {
            removeTemporaryDirectory(directory)
            throw error
        }
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
        defer { removeTemporaryDirectory(fixture.directory) }
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
        let value = try await EtcdInstance.restoring(URL(fileURLWithPath: fixture.path("d.db.zst.age.restored"))).stopping { try await $0.etcdctl(["get", "k7", "--print-value-only"]) }
        #expect(value.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "value-7")
    }

    @Test("a wrong identity, a missing one, a flipped byte, a truncated object, a corrupt snapshot: a clear error and no output file")
    func failures() async throws {
        let fixture = try await Self.fixture()
        defer { removeTemporaryDirectory(fixture.directory) }
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
            ("namespace without --backup", ["--from", plain, "--namespace", "x"], "--namespace goes with --backup"),
            ("kubeconfig without --backup", ["--from", plain, "--kubeconfig", "x"], "--kubeconfig goes with --backup"),
            ("schedule without --latest", ["--schedule", "nightly"], "--schedule NAME needs --latest"),
            ("latest without --schedule", ["--from", plain, "--latest"], "--latest goes with --schedule NAME"),
            ("schedule and backup", ["--schedule", "nightly", "--latest", "--backup", "b"], "exactly one of --backup NAME and --from"),
            ("s3 without credentials", ["--from", "s3://bucket/key.db"], "needs credentials in the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
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

    @Test("--output is made with mode 0600; an existing file is refused without --force and left as it was, replaced with it")
    func outputFile() async throws {
        let fixture = try await Self.fixture()
        defer { removeTemporaryDirectory(fixture.directory) }
        let output = fixture.path("restored.db")
        let first = try await CLI.run(with: ["restore", "--from", fixture.snapshot.path, "--output", output])
        #expect(first.status == 0, "\(first.stderr)")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: output)[.posixPermissions] as? Int)
        #expect(mode == 0o600, "mode \(String(mode, radix: 8))")

        try Data("keep me".utf8).write(to: URL(fileURLWithPath: output))
        let refused = try await CLI.run(with: ["restore", "--from", fixture.snapshot.path, "--output", output])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("\(output) exists; pass --force to replace it"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "keep me", "left as it was")

        // A link at --output is refused too, and never followed.
        let target = fixture.path("elsewhere")
        try Data("not yours".utf8).write(to: URL(fileURLWithPath: target))
        let link = fixture.path("link.db")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let linked = try await CLI.run(with: ["restore", "--from", fixture.snapshot.path, "--output", link])
        #expect(linked.status != 0 && linked.stderr.contains("exists; pass --force"), "\(linked.stderr)")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "not yours")

        let forced = try await CLI.run(with: ["restore", "--from", fixture.snapshot.path, "--output", output, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try Self.sha256(output) == Self.sha256(fixture.snapshot.path))
        let forcedLink = try await CLI.run(with: ["restore", "--from", fixture.snapshot.path, "--output", link, "--force"])
        #expect(forcedLink.status == 0, "\(forcedLink.stderr)")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "not yours", "--force replaces the link, not what it points at")
        #expect(try Self.sha256(link) == Self.sha256(fixture.snapshot.path))
    }

    @Test("SIGTERM or SIGINT during a restore removes the partial file and exits with 128 + the signal")
    func signalRemovesPartialFile() async throws {
        let fixture = try await Self.fixture()
        defer { removeTemporaryDirectory(fixture.directory) }
        let snapshot = try Data(contentsOf: fixture.snapshot)
        for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            // A named pipe as the source: the test writes part of the snapshot and keeps it open,
            // so the restore is mid-file when the signal comes.
            let pipe = fixture.path("slow-\(name).db")
            #expect(mkfifo(pipe, 0o600) == 0)
            let writer = open(pipe, O_RDWR)  // Linux: opening a FIFO read-write never blocks
            try #require(writer >= 0)
            defer { close(writer) }
            let output = fixture.path("interrupted-\(name).db")
            let running = try await ProcessRunner.start(CLI.executable.path, ["restore", "--from", pipe, "--output", output])
            let piece = min(snapshot.count / 2, 16 * 1024)
            let written = snapshot.prefix(piece).withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
            #expect(written == piece)
            try await eventually("the restore to start its partial file") {
                try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path)
                    .contains { $0.hasPrefix(".interrupted-\(name).db.partial-") }
            }
            running.send(signal)
            let result = try await running.finish()
            #expect(result.status == 128 + signal, "\(name): \(result.stderr)")
            #expect(result.stderr.contains("interrupted (\(name)): 1 partial file removed"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output), "\(name): no output")
            let left = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).filter { $0.contains("interrupted-\(name)") }
            #expect(left.isEmpty, "\(name): nothing left behind: \(left)")
        }
    }
}
