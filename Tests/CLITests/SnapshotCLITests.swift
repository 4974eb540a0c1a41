import Crypto
import Foundation
import S3TestSupport
import TalosTesting
import TestSupport
import Testing

@Suite("talos-etcd-backup snapshot")
struct SnapshotCLITests {
    @Test("--talos-timeout-seconds outside 1 to 3600 is refused, naming the flag")
    func timeoutRange() async throws {
        for value in ["0", "3601"] {
            let result = try await CLI.run("snapshot", "--talos-timeout-seconds", value, "--talosconfig", "/nonexistent", "--output", "/nonexistent/x.db")
            #expect(result.status != 0)
            #expect(result.stderr.contains("--talos-timeout-seconds must be 1 to 3600, not \(value)"), "\(result.stderr)")
        }
    }

    @Test("writes a verified snapshot and prints node, size, SHA-256, revision and key count; a corrupt one or one whose bbolt structure is damaged (trailer intact) leaves no file")
    func snapshot() async throws {
        try await TalosTestServer.withRunningOnFreshEtcd { server in
            let directory = try makeTemporaryDirectory("cli-snapshot")
            defer { removeTemporaryDirectory(directory) }
            let config = directory.appendingPathComponent("talosconfig")
            try Data(try server.talosconfig(role: "os:etcd:backup").utf8).write(to: config)
            let output = directory.appendingPathComponent("etcd.db")

            let result = try await CLI.run("snapshot", "--talos-timeout-seconds", "300", "--talosconfig", config.path, "--output", output.path)
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n")
            #expect(lines.first == "node: 127.0.0.1")
            let size = try #require(try FileManager.default.attributesOfItem(atPath: output.path)[.size] as? Int)
            #expect(lines.dropFirst().first == "size: \(size) bytes")
            let sha256 = try #require(lines.dropFirst(2).first)
            #expect(sha256.hasPrefix("sha256: "))
            let contents = try Data(contentsOf: output)
            #expect(sha256 == "sha256: \(SHA256.hash(data: contents).map { String(format: "%02x", $0) }.joined())")
            let status = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", output.path, "--write-out", "json"])
            #expect(status.status == 0, "\(status.stderr)")
            // etcdctl reads the same revision and key count the structure check printed.
            let facts = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            let revision = try #require(facts?["revision"] as? Int)
            let totalKeys = try #require(facts?["totalKey"] as? Int)
            #expect(Array(lines.dropFirst(3)) == ["etcd revision: \(revision)", "total keys: \(totalKeys)"], "\(lines)")

            server.setFault(.damageStructure)
            let damaged = directory.appendingPathComponent("damaged.db")
            let refused = try await CLI.run("snapshot", "--talos-timeout-seconds", "300", "--talosconfig", config.path, "--output", damaged.path)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("bbolt"), "the structure check refuses it: \(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: damaged.path))

            server.setFault(.corruptByte)
            let corrupt = directory.appendingPathComponent("corrupt.db")
            let failed = try await CLI.run("snapshot", "--talos-timeout-seconds", "300", "--talosconfig", config.path, "--output", corrupt.path)
            #expect(failed.status == 1)
            #expect(failed.stderr.contains("etcd snapshot is corrupt"))
            #expect(!FileManager.default.fileExists(atPath: corrupt.path))
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            #expect(left == ["etcd.db", "talosconfig"])  // no partial file

            let missing = try await CLI.run("snapshot", "--talos-timeout-seconds", "300", "--talosconfig", directory.appendingPathComponent("nope").path, "--output", corrupt.path)
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("talosconfig \(directory.appendingPathComponent("nope").path): cannot be read"), "\(missing.stderr)")
        }
    }
}

@Suite("talos-etcd-backup snapshot to S3")
struct SnapshotToS3CLITests {
    @Test("--output s3://BUCKET/KEY streams a verified snapshot into S3 (moto with SigV4 on); an existing object is never overwritten; a wrong secret says so")
    func snapshotToS3() async throws {
        let s3 = try S3TestServer.named("AUTH")
        try await TalosTestServer.withRunningOnFreshEtcd { server in
            let directory = try makeTemporaryDirectory("cli-s3")
            defer { removeTemporaryDirectory(directory) }
            let config = directory.appendingPathComponent("talosconfig")
            try Data(try server.talosconfig(role: "os:etcd:backup").utf8).write(to: config)
            let key = "cli-\(UUID().uuidString.prefix(8))/etcd.db"
            var environment = ProcessInfo.processInfo.environment
            environment["AWS_ACCESS_KEY_ID"] = s3.credentials.accessKeyID
            environment["AWS_SECRET_ACCESS_KEY"] = s3.credentials.secretAccessKey
            let arguments = ["snapshot", "--talos-timeout-seconds", "300", "--talosconfig", config.path, "--output", "s3://\(s3.bucket)/\(key)",
                             "--s3-region", s3.region, "--s3-endpoint", s3.endpoint]

            let result = try await CLI.run(with: arguments, environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "node: 127.0.0.1")
            let stored = try await s3.readBack(key)
            #expect(lines.dropFirst().first == "size: \(stored.size) bytes")
            #expect(lines.dropFirst(2).first == "sha256: \(stored.sha256)")
            #expect(lines.dropFirst(3).first?.hasPrefix("etcd revision: ") == true, "\(lines)")

            let again = try await CLI.run(with: arguments, environment: environment)
            #expect(again.status == 1)
            #expect(again.stderr.contains("already exists"), "\(again.stderr)")
            #expect(try await s3.readBack(key).sha256 == stored.sha256)

            environment["AWS_SECRET_ACCESS_KEY"] = "wrong"
            let other = arguments.map { $0.replacingOccurrences(of: key, with: key + ".2") }
            let denied = try await CLI.run(with: other, environment: environment)
            #expect(denied.status == 1)
            #expect(denied.stderr.contains("signature does not match"), "\(denied.stderr)")
            #expect(!denied.stderr.contains(s3.credentials.secretAccessKey))
        }
    }
}

@Suite("talos-test-server executable")
struct TalosTestServerExecutableTests {
    @Test("serves on the given port, writes the CA and three talosconfigs, stops on SIGTERM")
    func runs() async throws {
        try await EtcdInstance.withRunning { etcd in
            let parent = try makeTemporaryDirectory("talos-pki")
            defer { removeTemporaryDirectory(parent) }
            let directory = parent.appendingPathComponent("pki")  // the server makes it
            let port = TestHelpers.freePort()
            let server = try await ProcessRunner.start(
                TestHelpers.builtProduct("talos-test-server").path,
                ["--port", String(port), "--etcd-endpoint", etcd.clientURL, "--pki-dir", directory.path])
            defer { server.stop() }
            let backupConfig = directory.appendingPathComponent("etcd-backup.talosconfig")
            let lastWritten = directory.appendingPathComponent("reader.talosconfig")
            try await eventually("the test server to write its talosconfigs") { FileManager.default.fileExists(atPath: lastWritten.path) }
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            #expect(files == ["admin.talosconfig", "ca.crt", "etcd-backup.talosconfig", "reader.talosconfig"])
            #expect(try String(contentsOf: backupConfig, encoding: .utf8).contains("127.0.0.1:\(port)"))

            let output = directory.appendingPathComponent("snapshot.db")
            let taken = try await CLI.run("snapshot", "--talos-timeout-seconds", "300", "--talosconfig", backupConfig.path, "--output", output.path)
            #expect(taken.status == 0, "\(taken.stderr)")
            let refused = try await CLI.run("snapshot", "--talos-timeout-seconds", "300", "--talosconfig", directory.appendingPathComponent("reader.talosconfig").path,
                                            "--output", directory.appendingPathComponent("no.db").path)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("permissionDenied") || refused.stderr.contains("not authorized"))

            kill(server.processIdentifier, SIGTERM)
            let result = try await server.finish()
            #expect(result.status == 0)
        }
    }
}
