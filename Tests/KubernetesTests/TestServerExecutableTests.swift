import Waiting
import Foundation
import TestSupport
import Testing

@Suite("kubernetes-test-server executable")
struct TestServerExecutableTests {
    static var executable: URL { TestHelpers.builtProduct("kubernetes-test-server") }

    @Test("listens on the given port over TLS, writes a kubeconfig kubectl uses, logs requests, stops on SIGTERM")
    func runsUntilSigterm() async throws {
        let directory = try makeTemporaryDirectory("kube")
        defer { removeTemporaryDirectory(directory) }
        let kubeconfig = directory.appendingPathComponent("kubeconfig").path
        let port = TestHelpers.freePort()
        let server = try await ProcessRunner.start(Self.executable.path, ["--port", String(port), "--tls", "--kubeconfig", kubeconfig])
        defer { server.stop() }

        try await eventually("the kubeconfig is written") { FileManager.default.fileExists(atPath: kubeconfig) }
        let written = try String(contentsOfFile: kubeconfig, encoding: .utf8)
        #expect(written.contains("server: https://127.0.0.1:\(port)"))
        #expect(written.contains("certificate-authority-data:"))

        let namespaces = try await Kubectl(kubeconfig: kubeconfig).run(["get", "namespaces", "-o", "name"])
        #expect(namespaces.status == 0, "\(namespaces.stderr)")
        #expect(namespaces.stdout.contains("namespace/default"))
        try await eventually("the request is logged") { (server.stdoutSoFar + server.stderrSoFar).contains("GET /api/v1/namespaces") }

        kill(server.processIdentifier, SIGTERM)
        // A generous bound: only a server that ignored SIGTERM reaches it (and is then killed).
        let result = try await withDeadline(.seconds(300), "the test server to stop on SIGTERM") { try await server.finish() }
        #expect(result.status == 0, "a clean stop, not a kill")
    }
}
