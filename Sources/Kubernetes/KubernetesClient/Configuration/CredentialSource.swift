import ConfigurationFiles
import Foundation

/// Supplies the bearer token (and, for exec plugins, client certificate) for each request,
/// refreshing it when it rotates or expires: token files are re-read whenever their
/// modification time changes (kubelet rotates projected service-account tokens); exec plugin
/// credentials are cached until `expirationTimestamp` (minus a margin) and fetched again after
/// a 401. Concurrent callers that all find the credential missing share one plugin run.
actor CredentialSource {
    struct Current: Sendable {
        var token: String?
        var clientCertificatePEM: [UInt8]?
        var clientKeyPEM: [UInt8]?
    }

    private let credentials: KubernetesConfiguration.Credentials
    private let server: String
    /// How long an exec plugin may run: as long as a request may take.
    private let pluginTimeout: Duration
    private var cached: Current?
    private var validUntil: Date = .distantPast
    private var tokenFileModified: Date?
    /// Callers waiting for the exec plugin run already under way (nil: none under way).
    private var waitingForPlugin: [CheckedContinuation<Current, any Error>]?

    init(_ credentials: KubernetesConfiguration.Credentials, server: String, pluginTimeout: Duration) {
        self.credentials = credentials
        self.server = server
        self.pluginTimeout = pluginTimeout
    }

    func current(now: Date = Date()) async throws -> Current {
        if case .tokenFile(let path) = credentials {
            let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
            if modified != tokenFileModified {
                tokenFileModified = modified
                cached = nil
            }
        }
        if let cached, now < validUntil { return cached }
        let fresh: Current
        switch credentials {
        case .none:
            fresh = Current()
            validUntil = .distantFuture
        case .token(let token):
            fresh = Current(token: token)
            validUntil = .distantFuture
        case .tokenFile(let path):
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationError(source: "token file \(path)", problem: "cannot be read")
            }
            fresh = Current(token: text.trimmingCharacters(in: .whitespacesAndNewlines))
            validUntil = .distantFuture  // until the file changes
        case .exec(let plugin):
            if waitingForPlugin != nil {
                return try await withCheckedThrowingContinuation { waitingForPlugin?.append($0) }
            }
            waitingForPlugin = []
            let result: Result<ExecCredentialRunner.Credential, any Error>
            do {
                result = .success(try await ExecCredentialRunner.run(plugin, server: server, timeout: pluginTimeout))
            } catch {
                result = .failure(error)
            }
            let waiters = waitingForPlugin ?? []
            waitingForPlugin = nil
            switch result {
            case .success(let credential):
                fresh = Current(token: credential.token, clientCertificatePEM: credential.clientCertificatePEM, clientKeyPEM: credential.clientKeyPEM)
                // Until it expires, as client-go; without an expiry, until a 401 says otherwise.
                validUntil = credential.expiration ?? .distantFuture
                for waiter in waiters { waiter.resume(returning: fresh) }
            case .failure(let error):
                for waiter in waiters { waiter.resume(throwing: error) }
                throw error
            }
        }
        cached = fresh
        return fresh
    }

    /// Forgets the cached credential (after a 401), so the next request fetches a new one.
    func invalidate() {
        cached = nil
        validUntil = .distantPast
    }
}
