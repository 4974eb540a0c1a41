import Foundation
import KubernetesClient
import S3

/// Who may use the operator's own S3 credentials (``AmbientCredentials``: web identity, a
/// container credentials endpoint, its environment). They are the operator's, so any tenant
/// who may create a backup could otherwise write with them (or read with them) wherever they
/// reach: they are off unless `--ambient-s3-credentials-namespaces` names the namespaces whose
/// backups may name no keys.
public struct AmbientS3Access: Sendable {
    /// Which namespaces may use them.
    public enum Namespaces: Sendable, Equatable {
        /// Every namespace (`*`): for an operator that serves one team.
        case all
        case named(Set<String>)
        /// The namespaces a label selector matches, as the API server evaluates it.
        case labelled(String)

        /// `--ambient-s3-credentials-namespaces`' value: `*`, comma-separated namespace names,
        /// or a label selector (anything with `=`, `!`, `(` or a space, which no name holds).
        public init(parsing text: String) throws {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed == "*" {
                self = .all
            } else if trimmed.contains(where: { "=!( ".contains($0) }) {
                self = .labelled(trimmed)
            } else {
                let names = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard !names.isEmpty, names.allSatisfy({ Self.isNamespaceName($0) }) else {
                    throw AmbientAccessError("--ambient-s3-credentials-namespaces \"\(text.prefix(200))\": expected *, namespace names separated by commas, or a label selector")
                }
                self = .named(Set(names))
            }
        }

        static func isNamespaceName(_ name: String) -> Bool {
            !name.isEmpty && name.utf8.count <= 63 && name.first != "-" && name.last != "-"
                && name.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d }
        }
    }

    /// Why the option cannot be taken (said at start, not at the first backup).
    public struct AmbientAccessError: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public let credentials: AmbientCredentials?
    public let namespaces: Namespaces?
    private let labelled: LabelledNamespaces?

    /// Off: every backup must name its keys.
    public static let off = AmbientS3Access(credentials: nil, namespaces: nil, kubernetes: nil)

    /// For the CLI, which acts as whoever runs it: the credentials of its own environment, for
    /// every backup it reads.
    /// An environment that names a source by halves fails only the backups that need it.
    public static func ofTheCaller(environment: [String: String] = ProcessInfo.processInfo.environment) -> AmbientS3Access {
        let credentials: AmbientCredentials?
        do {
            credentials = try AmbientCredentials.fromEnvironment(environment)
        } catch let error as S3CredentialsError {
            credentials = AmbientCredentials(source: Unusable(error: error), summary: error.source)
        } catch {
            credentials = AmbientCredentials(source: Unusable(error: S3CredentialsError(source: "environment", message: "\(error)")), summary: "environment")
        }
        return AmbientS3Access(credentials: credentials, namespaces: .all, kubernetes: nil)
    }

    /// Credentials the environment names wrongly: every request fails with why.
    struct Unusable: S3CredentialSource {
        let error: S3CredentialsError
        func credentials() async throws -> S3Credentials { throw error }
    }

    /// `kubernetes` lists namespaces when `namespaces` is a label selector (RBAC: list
    /// namespaces); their labels are read at most every ten seconds.
    public init(credentials: AmbientCredentials?, namespaces: Namespaces?, kubernetes: (any KubernetesAPI)?) {
        self.credentials = credentials
        self.namespaces = namespaces
        if case .labelled(let selector) = namespaces, let kubernetes {
            labelled = LabelledNamespaces(client: kubernetes, selector: selector)
        } else {
            labelled = nil
        }
    }

    /// The credentials a backup in `namespace` that names no keys signs with; a
    /// `CredentialsNotFound` failure that says why not.
    public func credentials(for namespace: String, field: String) async throws -> any S3CredentialSource {
        let allowed: Bool
        switch namespaces {
        case nil: allowed = false
        case .all?: allowed = true
        case .named(let names)?: allowed = names.contains(namespace)
        case .labelled?:
            allowed = try await labelled?.contains(namespace) ?? false
        }
        guard allowed else {
            throw BackupFailure(
                reason: .credentialsNotFound,
                message: "\(field) names no accessKeyID and secretAccessKey, and the operator's own (ambient) credentials are not allowed in namespace \(namespace): name a Secret's keys, or have the operator started with --ambient-s3-credentials-namespaces including it",
                retryable: false)
        }
        guard let credentials else {
            throw BackupFailure(reason: .credentialsNotFound,
                                message: "\(field) names no accessKeyID and secretAccessKey, and the environment names no credentials (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, AWS_CONTAINER_CREDENTIALS_FULL_URI, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                                retryable: false)
        }
        return credentials.source
    }
}

/// The names of the namespaces a label selector matches, listed at most every ten seconds.
actor LabelledNamespaces {
    let client: any KubernetesAPI
    let selector: String
    private var names: Set<String> = []
    private var listedAt: ContinuousClock.Instant?

    init(client: any KubernetesAPI, selector: String) {
        self.client = client
        self.selector = selector
    }

    func contains(_ namespace: String) async throws -> Bool {
        let now = ContinuousClock.now
        if listedAt.map({ now - $0 > .seconds(10) }) ?? true {
            do {
                let list = try await client.list(GenericObject.self, .namespaces, namespace: nil, options: ListOptions(labelSelector: selector))
                names = Set(list.items.compactMap { $0.metadata.name })
                listedAt = now
            } catch let error as KubernetesError {
                throw BackupFailure(reason: .internalError,
                                    message: "cannot list the namespaces --ambient-s3-credentials-namespaces selects (\(selector.prefix(200))): \(error.description)")
            }
        }
        return names.contains(namespace)
    }
}
