import Foundation

/// Runs kubectl (on the machine image; scripts/test installs Debian's kubernetes-client where
/// it is missing) against a kubeconfig.
public struct Kubectl: Sendable {
    public let kubeconfig: String

    public init(kubeconfig: String) { self.kubeconfig = kubeconfig }

    public func run(_ arguments: [String], stdin: String? = nil) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig] + arguments, stdin: stdin.map { Data($0.utf8) })
    }

    public func start(_ arguments: [String]) async throws -> ProcessRunner.Running {
        try await ProcessRunner.start("kubectl", ["--kubeconfig", kubeconfig] + arguments)
    }
}

