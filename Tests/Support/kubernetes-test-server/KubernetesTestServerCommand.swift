import ArgumentParser
import Foundation
import KubernetesTesting
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

    @Flag(help: "Serve HTTPS with a generated CA; clients authenticate with a client certificate from it (both written into the kubeconfig) unless --token is given.")
    var tls = false

    @Option(help: "Require this bearer token instead.")
    var token: String?

    @Option(help: "Where to write a kubeconfig for this server.")
    var kubeconfig: String

    func run() async throws {
        let logger = Logger(label: "kubernetes-test-server")
        // kubectl asks for a user name when an HTTPS server has no credentials in the kubeconfig.
        let authentication: KubernetesTestServer.Authentication =
            token.map { .token($0) } ?? (tls ? .clientCertificate : .none)
        let server = try KubernetesTestServer(options: .init(
            tls: tls, authentication: authentication, port: port, logger: logger))
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

