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

        /// `--ambient-s3-credentials-namespaces`' value: `*`; namespace names separated by commas
        /// (spaces around them allowed); or a label selector, which is any value holding `=`,
        /// `!` or `(` (no namespace name does). A bare label key reads as a namespace name.
        public init(parsing text: String) throws {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed == "*" {
                self = .all
            } else if trimmed.contains(where: { "=!(".contains($0) }) {
                self = .labelled(trimmed)
            } else {
                let names = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard names.allSatisfy({ Self.isNamespaceName($0) }) else {
                    throw AmbientAccessError("--ambient-s3-credentials-namespaces \"\(text.prefix(200))\": expected *, namespace names separated by commas, or a label selector (with =, != or in (...))")
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

    /// `kubernetes` lists namespaces when `namespaces` is a label selector (RBAC: list
    /// namespaces); their labels are read at most every ten seconds.
    ///
    /// With a selector, whoever may label namespaces decides who uses the operator's identity.
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
    /// `CredentialsNotFound` failure that says why not. The tenant's endpoint gets requests
    /// signed with them, as with any keys: SigV4 never sends the secret, each signature is
    /// bound to that host and request, and a session token alone signs nothing. Roles are
    /// assumed at the operator's STS, never at the tenant's endpoint (``AmbientCredentials/stsEndpoint``).
    /// Lists the namespaces the selector picks once, so that a selector the API server refuses,
    /// or a missing `list namespaces` permission, stops the start rather than every backup.
    public func checkSelector() async throws {
        _ = try await labelled?.contains("")
    }

    public func credentials(for namespace: String, field: String) async throws -> AmbientCredentials {
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
                                message: "\(field) names no accessKeyID and secretAccessKey, and the operator has no credentials of its own",
                                retryable: false)
        }
        return credentials
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
