import ArgumentParser
import Foundation
import KubernetesTestServer
import Logging
import UnixSignals

/// `kubernetes-test-server`: the in-memory API server as a process, for kubectl and for
/// end-to-end tests that run the operator as a separate process.
@main
struct KubernetesTestServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubernetes-test-server",
        abstract: "An in-memory Kubernetes API server for tests. Listens on 127.0.0.1 until SIGTERM.")

    @Option(help: "Port to listen on (0 picks a free one; the kubeconfig says which).")
    var port: Int = 0

    @Flag(help: "Serve HTTPS with a generated CA (written into the kubeconfig).")
    var tls = false

    @Option(help: "Require this bearer token.")
    var token: String?

    @Flag(help: "Require a client certificate signed by the generated CA (implies --tls).")
    var clientCertificate = false

    @Option(help: "Where to write a kubeconfig for this server.")
    var kubeconfig: String

    func run() async throws {
        let logger = Logger(label: "kubernetes-test-server")
        let authentication: KubernetesTestServer.Authentication =
            clientCertificate ? .clientCertificate : token.map { .token($0) } ?? .none
        let server = try KubernetesTestServer(options: .init(
            tls: tls || clientCertificate, authentication: authentication, port: port, logger: logger))
        let path = kubeconfig
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.run { _ in
                    do {
                        try server.writeKubeconfig(to: path)
                        logger.info("listening on \(server.url); kubeconfig written to \(path)")
                    } catch {
                        logger.error("cannot write kubeconfig \(path): \(error)")
                    }
                }
            }
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { return }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

