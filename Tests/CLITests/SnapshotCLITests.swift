import Foundation
import TalosTestServer
import TestSupport
import Testing

@Suite("talos-etcd-backup snapshot")
struct SnapshotCLITests {
    @Test("writes a verified snapshot and prints node, size and SHA-256; a corrupt one leaves no file")
    func snapshot() async throws {
        let etcd = try await EtcdInstance.start()
        _ = try await etcd.etcdctl(["put", "cli", "works"])
        defer { Task { await etcd.stop() } }
        try await TalosTestServer.withRunning(etcdEndpoint: etcd.clientURL) { server in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-snapshot-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let config = directory.appendingPathComponent("talosconfig")
            try Data(try server.talosconfig(role: "os:etcd:backup").utf8).write(to: config)
            let output = directory.appendingPathComponent("etcd.db")

            let result = try await CLI.run("snapshot", "--talosconfig", config.path, "--output", output.path)
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n")
            #expect(lines.first == "node: 127.0.0.1")
            let size = try #require(try FileManager.default.attributesOfItem(atPath: output.path)[.size] as? Int)
            #expect(lines.dropFirst().first == "size: \(size) bytes")
            #expect(lines.last?.hasPrefix("sha256: ") == true)
            var environment = ProcessInfo.processInfo.environment
            environment["ETCDCTL_API"] = "3"
            let status = try await ProcessRunner.run("/usr/bin/etcdctl", ["snapshot", "status", output.path], environment: environment)
            #expect(status.status == 0, "\(status.stderr)")

            server.setFault(.corruptByte)
            let corrupt = directory.appendingPathComponent("corrupt.db")
            let failed = try await CLI.run("snapshot", "--talosconfig", config.path, "--output", corrupt.path)
            #expect(failed.status == 1)
            #expect(failed.stderr.contains("etcd snapshot is corrupt"))
            #expect(!FileManager.default.fileExists(atPath: corrupt.path))
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            #expect(left == ["etcd.db", "talosconfig"])  // no partial file

            let missing = try await CLI.run("snapshot", "--talosconfig", directory.appendingPathComponent("nope").path, "--output", corrupt.path)
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("cannot read talosconfig"))
        }
    }
}
