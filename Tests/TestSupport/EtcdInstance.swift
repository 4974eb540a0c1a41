import Foundation
import Testing

/// A real etcd (Debian's etcd-server, installed by scripts/test) on free loopback ports.
public struct EtcdInstance: Sendable {
    public let directory: URL
    public let clientURL: String
    let process: ProcessRunner.Running

    /// Starts etcd on `dataDirectory` (a fresh one when nil).
    public static func start(dataDirectory: URL? = nil) async throws -> EtcdInstance {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"), "etcd is missing: run scripts/test, which installs Debian's etcd-server")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("etcd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let clientPort = TestHelpers.freePort(), peerPort = TestHelpers.freePort()
        let clientURL = "http://127.0.0.1:\(clientPort)"
        let data = dataDirectory ?? directory.appendingPathComponent("data")
        let process = try ProcessRunner.start("/usr/bin/etcd", [
            "--name", "default", "--data-dir", data.path,
            "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
            "--listen-peer-urls", "http://127.0.0.1:\(peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-cluster", "default=http://127.0.0.1:\(peerPort)",
        ])
        let instance = EtcdInstance(directory: directory, clientURL: clientURL, process: process)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if (try? await instance.etcdctl(["endpoint", "health"]))?.status == 0 { return instance }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.stop()
        Issue.record("etcd did not become healthy: \(process.stderrSoFar.suffix(500))")
        throw CancellationError()
    }

    public func etcdctl(_ arguments: [String]) async throws -> ProcessRunner.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["ETCDCTL_API"] = "3"
        return try await ProcessRunner.run("/usr/bin/etcdctl", ["--endpoints", clientURL] + arguments, environment: environment)
    }

    public func stop() async {
        process.stop()
        _ = try? await process.finish()
    }
}

