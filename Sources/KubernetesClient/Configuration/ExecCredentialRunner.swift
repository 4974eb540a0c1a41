import ConfigurationFiles
import Deadline
import Dispatch
import Foundation
import Synchronization

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

    /// Runs the plugin; it has `timeout` to print its credential and exit.
    static func run(_ plugin: ExecCredentialPlugin, server: String, timeout: Duration) async throws -> Credential {
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
        let (exited, exit) = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exit.yield($0.terminationStatus); exit.finish() }
        do {
            try process.run()
        } catch {
            throw ConfigurationError(source: source, problem: "cannot be started: \(error.localizedDescription)")
        }
        // Both pipes are drained while the plugin runs, so one that prints more than a pipe
        // holds (64 KiB) cannot block on a full pipe; the run as a whole has a time limit.
        let stdoutCollector = PipeCollector(output.fileHandleForReading)
        let stderrCollector = PipeCollector(errors.fileHandleForReading)
        defer {
            stdoutCollector.stop()
            stderrCollector.stop()
        }
        let status: Int32
        do {
            status = try await withDeadline(timeout, "\(source)") {
                var statuses = exited.makeAsyncIterator()
                let status = await statuses.next() ?? -1
                // A child the plugin left behind may hold its pipes open: what was written by
                // the time the plugin exited is what counts.
                _ = try? await withDeadline(.seconds(2), "the plugin's output") {
                    await stdoutCollector.waitForEnd()
                    await stderrCollector.waitForEnd()
                }
                return status
            }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            if error is DeadlineExceeded {
                throw ConfigurationError(source: source, problem: "did not finish within \(timeout)")
            }
            throw error
        }
        let stdout = stdoutCollector.data
        let stderr = String(decoding: stderrCollector.data, as: UTF8.self)
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

/// Reads a pipe to its end on a Dispatch thread (so the cooperative pool is never blocked and a
/// plugin that writes more than a pipe holds never stalls), and lets callers wait for that end
/// without being held by it: ``stop()`` releases the waiters, while a read held open by a child
/// the plugin left behind finishes on its own thread later.
private final class PipeCollector: Sendable {
    private let output = Mutex(Data())
    private let ended = Latch()

    init(_ handle: FileHandle) {
        // A queue of its own, not a global one: global queues run on as many threads as there
        // are cores, and a read blocked by a plugin's lingering child would starve them.
        DispatchQueue(label: "exec-credential-plugin-output").async { [self] in
            let data = handle.readDataToEndOfFile()
            output.withLock { $0 = data }
            stop()
        }
    }

    var data: Data { output.withLock { $0 } }

    /// Returns at end of file, at ``stop()``, or when the caller is cancelled.
    func waitForEnd() async {
        await ended.wait()
    }

    /// Stops waiting (the end of file, or giving up) and wakes every waiter.
    func stop() {
        ended.open()
    }
}
