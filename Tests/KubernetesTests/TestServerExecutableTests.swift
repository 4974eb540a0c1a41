import Foundation
import TestSupport
import Testing

@Suite("kubernetes-test-server executable")
struct TestServerExecutableTests {
    static var executable: URL {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for directory in [besideTests, besideTests.deletingLastPathComponent()] {
            let candidate = directory.appendingPathComponent("kubernetes-test-server")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return repositoryRoot.appendingPathComponent(".build/debug/kubernetes-test-server")
    }

    /// A port nothing listens on right now.
    static func freePort() throws -> Int {
        let socket = Darwin_socket()
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func Darwin_socket() -> Int32 { socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }

    @Test("listens on the given port over TLS, writes a kubeconfig kubectl uses, logs requests, stops on SIGTERM")
    func runsUntilSigterm() async throws {
        let directory = try temporaryDirectory()
        let kubeconfig = directory.appendingPathComponent("kubeconfig").path
        let port = try Self.freePort()
        let server = try ProcessRunner.start(Self.executable.path, ["--port", String(port), "--tls", "--kubeconfig", kubeconfig])
        defer { server.stop() }

        try await eventually("the kubeconfig is written") { FileManager.default.fileExists(atPath: kubeconfig) }
        let written = try String(contentsOfFile: kubeconfig, encoding: .utf8)
        #expect(written.contains("server: https://127.0.0.1:\(port)"))
        #expect(written.contains("certificate-authority-data:"))

        let namespaces = try await Kubectl(kubeconfig: kubeconfig).run(["get", "namespaces", "-o", "name"])
        #expect(namespaces.status == 0, "\(namespaces.stderr)")
        #expect(namespaces.stdout.contains("namespace/default"))
        try await eventually("the request is logged") { (server.stdoutSoFar + server.stderrSoFar).contains("GET /api/v1/namespaces") }

        let stopping = ContinuousClock.now
        kill(server.processIdentifier, SIGTERM)
        let result = try await server.finish()
        #expect(result.status == 0)
        #expect(ContinuousClock.now - stopping < .seconds(5))
    }
}
