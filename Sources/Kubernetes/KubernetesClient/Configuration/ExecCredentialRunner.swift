import ConfigurationFiles
import Waiting
import Foundation
import Subprocess
import SystemPackage

/// Runs a `client.authentication.k8s.io` exec credential plugin and reads its `ExecCredential`.
enum ExecCredentialRunner {
    struct Credential: Sendable {
        var token: String?
        var clientCertificatePEM: [UInt8]?
        var clientKeyPEM: [UInt8]?
        var expiration: Date?
    }

    private struct ExecCredential: Decodable {
        struct Status: Decodable {
            var token: String?
            var clientCertificateData: String?
            var clientKeyData: String?
            var expirationTimestamp: String?
        }
        var apiVersion: String?
        var kind: String?
        var status: Status?
    }

    /// What a plugin may print on each stream before it is refused (kubectl sets no limit; a
    /// credential is a few KiB).
    static let outputLimit = 4 * 1024 * 1024

    /// Runs the plugin (swift-subprocess); it has `timeout` to print its credential and exit.
    /// Both streams are read while it runs, so one that prints more than a pipe holds cannot
    /// block; when the time is up it is killed. A child the plugin left behind holding its
    /// output open does not hold the run: what was written by the time the plugin exited counts.
    static func run(_ plugin: ExecCredentialPlugin, server: String, timeout: Duration) async throws -> Credential {
        let source = "exec credential plugin \(plugin.command)"
        let command = plugin.command.contains("/")
            ? Kubeconfig.absolute(plugin.command, relativeTo: plugin.baseDirectory) : plugin.command
        let executable: Executable = command.contains("/") ? .path(FilePath(command)) : .name(command)
        let info: [String: Any] = [
            "apiVersion": plugin.apiVersion, "kind": "ExecCredential", "spec": ["interactive": false],
        ]
        var overrides: [Environment.Key: String?] = [:]
        for (name, value) in plugin.environment { overrides[Environment.Key(stringLiteral: name)] = value }
        overrides["KUBERNETES_EXEC_INFO"] = String(decoding: try JSONSerialization.data(withJSONObject: info), as: UTF8.self)
        let environment = Environment.inherit.updating(overrides)
        let arguments = Arguments(plugin.arguments)

        let status: TerminationStatus, stdout: [UInt8], stderr: String
        do {
            (status, stdout, stderr) = try await withDeadline(timeout, "\(source)") {
                let result = try await Subprocess.run(
                    executable, arguments: arguments, environment: environment, input: .none,
                    output: .bytes(limit: outputLimit), error: .string(limit: outputLimit))
                return (result.terminationStatus, result.standardOutput, result.standardError)
            }
        } catch is DeadlineExceeded {
            throw ConfigurationError(source: source, problem: "did not finish within \(timeout)")
        } catch let error as SubprocessError {
            throw ConfigurationError(source: source, problem: "cannot be run: \(error)")
        }
        guard status.isSuccess else {
            // The plugin's stderr is its own diagnostic, written for the user; its stdout may
            // hold a credential and is never shown.
            let how = switch status {
            case .exited(let code): "exited with status \(code)"
            case .signaled(let signal): "was killed by signal \(signal)"
            }
            throw ConfigurationError(source: source, problem: "\(how): \(stderr.prefix(500))")
        }
        let decoded: ExecCredential
        do {
            decoded = try JSONDecoder().decode(ExecCredential.self, from: Data(stdout))
        } catch {
            throw ConfigurationError(source: source, problem: "did not print an ExecCredential as JSON")
        }
        guard decoded.kind == "ExecCredential", let credentialStatus = decoded.status else {
            throw ConfigurationError(source: source, field: "status", problem: "missing from its ExecCredential")
        }
        var credential = Credential(token: credentialStatus.token)
        if let data = credentialStatus.clientCertificateData, let key = credentialStatus.clientKeyData {
            credential.clientCertificatePEM = Array(data.utf8)
            credential.clientKeyPEM = Array(key.utf8)
        }
        if credential.token == nil && credential.clientCertificatePEM == nil {
            throw ConfigurationError(source: source, field: "status", problem: "has neither a token nor clientCertificateData/clientKeyData")
        }
        if let expiration = credentialStatus.expirationTimestamp {
            guard let date = KubeTime.parse(expiration) else {
                throw ConfigurationError(source: source, field: "status.expirationTimestamp", problem: "\"\(expiration)\" is not an RFC 3339 time")
            }
            credential.expiration = date
        }
        return credential
    }
}
