import Foundation
import TestSupport
import Testing

/// `restore --state-output` and `verify` with the control plane's state beside a downloaded
/// snapshot (`NAME.state.yaml.zst.age` beside `NAME.db.zst.age`, made with the zstd and age
/// CLIs): written decrypted with mode 0600, checked as a Secret; no state, or a damaged one,
/// leaves no file at all.
@Suite("talos-etcd-backup restore --state-output, verify: the state beside a file")
struct StateCLITests {
    static let manifest = """
        apiVersion: v1
        kind: Secret
        metadata:
          name: "my-controlplane-state"
          namespace: "default"
          labels:
            "talos.alperen.cloud/type": "state"
        type: "Opaque"
        data:
          "secretBundle": "\(Data("bundle".utf8).base64EncodedString())"

        """

    @Test("a zstd+age state beside the snapshot: verify names it, restore writes it (mode 0600) with the snapshot; without --identity neither")
    func stateBesideFile() async throws {
        let fixture = try await RestoreCLITests.fixture()
        defer { removeTemporaryDirectory(fixture.directory) }
        try await RestoreCLITests.shell("zstd -q -c \(fixture.snapshot.path) | age -r \(fixture.recipient) > \(fixture.path("kit.db.zst.age"))")
        try Data(Self.manifest.utf8).write(to: URL(fileURLWithPath: fixture.path("plain-state.yaml")))
        try await RestoreCLITests.shell("zstd -q -c \(fixture.path("plain-state.yaml")) | age -r \(fixture.recipient) > \(fixture.path("kit.state.yaml.zst.age"))")
        let source = ["--from", fixture.path("kit.db.zst.age"), "--identity", fixture.identity.path]

        let verified = try await CLI.run(with: ["verify"] + source)
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("verified its state \(fixture.path("kit.state.yaml.zst.age"))"), "\(verified.stdout)")
        #expect(verified.stdout.contains("Secret default/my-controlplane-state, 1 keys"), "\(verified.stdout)")

        let snapshot = fixture.path("out.db"), state = fixture.path("out-state.yaml")
        let restored = try await CLI.run(with: ["restore"] + source + ["--output", snapshot, "--state-output", state])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try String(contentsOfFile: state, encoding: .utf8) == Self.manifest)
        #expect(try RestoreCLITests.sha256(snapshot) == RestoreCLITests.sha256(fixture.snapshot.path))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: state)[.posixPermissions] as? Int)
        #expect(mode == 0o600, "mode \(String(mode, radix: 8))")
        #expect(!(restored.stdout + restored.stderr).contains(Data("bundle".utf8).base64EncodedString()), "the state's data is never printed")
        #expect(restored.stdout.contains("wrote \(state): Secret default/my-controlplane-state, 1 keys"), "\(restored.stdout)")

        let exists = try await CLI.run(with: ["restore"] + source + ["--output", fixture.path("again.db"), "--state-output", state])
        #expect(exists.status != 0 && exists.stderr.contains("\(state) exists; pass --force"), "\(exists.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fixture.path("again.db")), "refused before anything is written")
    }

    @Test("no state beside it, a damaged state, a state that is not a Secret: exit 1 naming it, and neither file written")
    func refusals() async throws {
        let fixture = try await RestoreCLITests.fixture()
        defer { removeTemporaryDirectory(fixture.directory) }
        try await RestoreCLITests.shell("zstd -q -c \(fixture.snapshot.path) | age -r \(fixture.recipient) > \(fixture.path("bare.db.zst.age"))")
        for name in ["cut", "notsecret"] {
            try await RestoreCLITests.shell("cp \(fixture.path("bare.db.zst.age")) \(fixture.path("\(name).db.zst.age"))")
        }
        try Data(Self.manifest.utf8).write(to: URL(fileURLWithPath: fixture.path("s.yaml")))
        try await RestoreCLITests.shell("zstd -q -c \(fixture.path("s.yaml")) | age -r \(fixture.recipient) | head -c -10 > \(fixture.path("cut.state.yaml.zst.age"))")
        try await RestoreCLITests.shell("printf 'apiVersion: v1\\nkind: ConfigMap\\n' | zstd -q | age -r \(fixture.recipient) > \(fixture.path("notsecret.state.yaml.zst.age"))")
        let cases: [(String, String)] = [
            ("bare", "has no state stored beside it"),
            ("cut", "damaged"),
            ("notsecret", "is not a v1 Secret"),
        ]
        for (name, message) in cases {
            let snapshot = fixture.path("\(name).out.db"), state = fixture.path("\(name).out-state.yaml")
            let result = try await CLI.run(with: ["restore", "--from", fixture.path("\(name).db.zst.age"), "--identity", fixture.identity.path,
                                                  "--output", snapshot, "--state-output", state])
            #expect(result.status == 1, "\(name)")
            #expect(result.stderr.contains(message), "\(name): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: snapshot) && !FileManager.default.fileExists(atPath: state), "\(name): nothing written")
            if name != "bare" {
                let verified = try await CLI.run(with: ["verify", "--from", fixture.path("\(name).db.zst.age"), "--identity", fixture.identity.path])
                #expect(verified.status == 1 && verified.stderr.contains(message), "verify \(name): \(verified.stderr)")
            }
        }
        let same = try await CLI.run(with: ["restore", "--from", fixture.path("bare.db.zst.age"), "--output", "x.db", "--state-output", "./x.db"])
        #expect(same.status != 0 && same.stderr.contains("must be different files"), "\(same.stderr)")
    }
}
