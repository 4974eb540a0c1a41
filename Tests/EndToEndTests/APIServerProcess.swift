import Foundation
import TestSupport
import Testing

/// The `kubernetes-test-server` executable on a fixed loopback port, for tests of API server
/// outages: killed (SIGKILL), frozen (SIGSTOP: connections stay open and nothing answers),
/// resumed, or restarted on the same port with its state lost.
final class APIServerProcess: @unchecked Sendable {
    let port: Int
    let kubeconfig: String
    private(set) var process: ProcessRunner.Running

    private init(port: Int, kubeconfig: String, process: ProcessRunner.Running) {
        self.port = port
        self.kubeconfig = kubeconfig
        self.process = process
    }

    static func start(kubeconfig: String) async throws -> APIServerProcess {
        let port = TestHelpers.freePort()
        let server = APIServerProcess(port: port, kubeconfig: kubeconfig, process: try await launch(port: port, kubeconfig: kubeconfig))
        try await server.waitUntilListening()
        return server
    }

    private static func launch(port: Int, kubeconfig: String) async throws -> ProcessRunner.Running {
        try? FileManager.default.removeItem(atPath: kubeconfig)
        return try await ProcessRunner.start(TestHelpers.builtProduct("kubernetes-test-server").path, ["--port", String(port), "--kubeconfig", kubeconfig])
    }

    private func waitUntilListening() async throws {
        try await eventually("the API server listens on \(port)") { FileManager.default.fileExists(atPath: kubeconfig) }
    }

    func kill() async {
        process.send(SIGKILL)
        _ = try? await process.finish()
    }

    func freeze() { process.send(SIGSTOP) }
    func resume() { process.send(SIGCONT) }

    /// A new server process on the same port, with none of the old one's objects.
    func restart() async throws {
        await kill()
        process = try await Self.launch(port: port, kubeconfig: kubeconfig)
        try await waitUntilListening()
    }

    func stop() async {
        process.send(SIGCONT)
        process.send(SIGKILL)
        _ = try? await process.finish()
    }
}
