import Foundation

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

    static func run(_ plugin: ExecCredentialPlugin, server: String) async throws -> Credential {
        let source = "exec credential plugin \(plugin.command)"
        let process = Process()
        let command = plugin.command.contains("/")
            ? Kubeconfig.absolute(plugin.command, relativeTo: plugin.baseDirectory) : plugin.command
        if command.contains("/") {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = plugin.arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [command] + plugin.arguments
        }
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in plugin.environment { environment[name] = value }
        let info: [String: Any] = [
            "apiVersion": plugin.apiVersion, "kind": "ExecCredential", "spec": ["interactive": false],
        ]
        environment["KUBERNETES_EXEC_INFO"] = String(decoding: try JSONSerialization.data(withJSONObject: info), as: UTF8.self)
        process.environment = environment
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: ConfigurationError(source: source, problem: "cannot be started: \(error.localizedDescription)"))
            }
        }
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard status == 0 else {
            // The plugin's stderr is its own diagnostic, written for the user; its stdout may
            // hold a credential and is never shown.
            throw ConfigurationError(source: source, problem: "exited with status \(status): \(stderr.prefix(500))")
        }
        let decoded: ExecCredential
        do {
            decoded = try JSONDecoder().decode(ExecCredential.self, from: stdout)
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
