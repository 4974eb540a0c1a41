import ControlPlaneState
import Foundation
import Synchronization
import KubernetesClient
import S3
import CustomResources

/// Reads one Secret's data when a backup needs it. The operator never lists or watches Secrets
/// (docs/design.md, Secrets), so this is a GET each time; tests can put anything behind it.
public protocol SecretReader: Sendable {
    /// The Secret, or nil when there is no such Secret.
    func secret(namespace: String, name: String) async throws -> SecretContents?
}

/// What the operator reads of a Secret: its decoded `data`, and its labels and type (for the
/// state stored beside a snapshot). Never logged.
public struct SecretContents: Sendable, Equatable {
    public var data: [String: [UInt8]]
    public var labels: [String: String]
    public var type: String?

    public init(data: [String: [UInt8]], labels: [String: String] = [:], type: String? = nil) {
        self.data = data
        self.labels = labels
        self.type = type
    }
}

extension SecretReader {
    /// The Secret's decoded `data`, or nil when there is no such Secret.
    public func secretData(namespace: String, name: String) async throws -> [String: [UInt8]]? {
        try await secret(namespace: namespace, name: name)?.data
    }
}

/// Secrets from the Kubernetes API.
public struct KubernetesSecretReader: SecretReader {
    let client: any KubernetesAPI

    public init(client: any KubernetesAPI) { self.client = client }

    public func secret(namespace: String, name: String) async throws -> SecretContents? {
        let secret: GenericObject
        do {
            secret = try await client.get(GenericObject.self, .secrets, namespace: namespace, name: name)
        } catch let error as KubernetesError where error.isNotFound {
            return nil
        }
        var decoded: [String: [UInt8]] = [:]
        if case .object(let data)? = secret.raw["data"] {
            for (key, value) in data {
                if case .string(let base64) = value, let bytes = Data(base64Encoded: base64) { decoded[key] = Array(bytes) }
            }
        }
        let type: String? = if case .string(let type)? = secret.raw["type"] { type } else { nil }
        return SecretContents(data: decoded, labels: secret.metadata.labels ?? [:], type: type)
    }
}

/// Reads each Secret at most once, for one attempt or one deletion: the two S3 keys of one
/// Secret cost one GET, and a Secret that changes between attempts is read again by the next.
/// Nothing outlives the resolver that holds it.
final class SecretsReadOnce: SecretReader {
    private let base: any SecretReader
    /// By `namespace/name`: the Secret, or nil for a Secret that does not exist.
    private let read = Mutex<[String: SecretContents?]>([:])

    init(_ base: any SecretReader) { self.base = base }

    func secret(namespace: String, name: String) async throws -> SecretContents? {
        let key = "\(namespace)/\(name)"
        if let known = read.withLock({ $0[key] }) { return known }
        let secret = try await base.secret(namespace: namespace, name: name)
        read.withLock { $0[key] = .some(secret) }
        return secret
    }
}

/// The credentials one backup needs, resolved from its namespace's Secrets with reasons that
/// name the Secret and key to fix.
public struct CredentialResolver: Sendable {
    let secrets: any SecretReader
    /// For backups that name no S3 keys.
    let ambient: AmbientS3Access

    public init(secrets: any SecretReader, ambient: AmbientS3Access = .off) {
        self.secrets = secrets
        self.ambient = ambient
    }

    /// The same resolver, reading each Secret once (``SecretsReadOnce``): one per attempt.
    public func readingEachSecretOnce() -> CredentialResolver { CredentialResolver(secrets: SecretsReadOnce(secrets), ambient: ambient) }

    /// The talosconfig of control plane `name`, looked up in docs/design.md's order: Secret
    /// `<name>-talosconfig`, key `talosconfig`, else key `<name>.talosconfig` (the Go
    /// talos-operator's layout), else key `config` (a Talos ServiceAccount Secret).
    public func talosconfig(controlPlane name: String, namespace: String) async throws -> (text: String, source: String) {
        let secretName = "\(name)-talosconfig"
        let keys = ["talosconfig", "\(name).talosconfig", "config"]
        guard let data = try await secrets.secretData(namespace: namespace, name: secretName) else {
            throw BackupFailure(
                reason: BackupFailure.Reason.talosConfigNotFound,
                message: "Secret \(namespace)/\(secretName) not found: create it with the control plane's talosconfig under key \"talosconfig\"")
        }
        for key in keys {
            if let bytes = data[key] {
                guard let text = String(bytes: bytes, encoding: .utf8) else {
                    throw BackupFailure(reason: BackupFailure.Reason.talosConfigInvalid,
                                        message: "Secret \(namespace)/\(secretName) key \"\(key)\" is not UTF-8 text")
                }
                return (text, "Secret \(namespace)/\(secretName) key \"\(key)\"")
            }
        }
        throw BackupFailure(
            reason: BackupFailure.Reason.talosConfigNotFound,
            message: "Secret \(namespace)/\(secretName) has none of the keys \(keys.map { "\"\($0)\"" }.joined(separator: ", ")) holding a talosconfig")
    }

    /// The value of a Secret key selector, as text with surrounding whitespace trimmed.
    /// `missing` is the failure's reason when the Secret or key is not there (or not text).
    public func value(of selector: (name: String, key: String), field: String, namespace: String,
                      missing: ConditionReason = .credentialsNotFound) async throws -> String {
        let bytes = try await self.bytes(of: selector, field: field, namespace: namespace, missing: missing)
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw BackupFailure(reason: missing,
                                message: "Secret \(namespace)/\(selector.name) key \"\(selector.key)\" (named by \(field)) is not UTF-8 text")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Raw bytes of a Secret key (a CA bundle).
    public func bytes(of selector: (name: String, key: String), field: String, namespace: String,
                      missing: ConditionReason = .credentialsNotFound) async throws -> [UInt8] {
        guard let data = try await secrets.secretData(namespace: namespace, name: selector.name) else {
            throw BackupFailure(reason: missing, message: "Secret \(namespace)/\(selector.name) named by \(field) not found")
        }
        guard let bytes = data[selector.key] else {
            throw BackupFailure(reason: missing,
                                message: "Secret \(namespace)/\(selector.name) has no key \"\(selector.key)\" (named by \(field))")
        }
        return bytes
    }

    /// How to reach a backup's bucket: `s3`'s fields with the credentials (and CA bundle)
    /// read from the Secrets they name; without keys, the operator's ambient credentials where
    /// ``AmbientS3Access`` allows them. With `roleARN`, those assume the role, with the
    /// namespace as external ID and `talos-etcd-backup.<namespace>` as session name.
    public func s3Configuration(_ s3: S3Storage, namespace: String) async throws -> S3Configuration {
        let field = "spec.backupStorage.s3"
        let credentials: any S3CredentialSource
        var assumedAlready = false
        if let keyID = s3.accessKeyID, let secret = s3.secretAccessKey {
            let accessKeyID = try await value(of: (keyID.name, keyID.key), field: "\(field).accessKeyID", namespace: namespace)
            let secretAccessKey = try await value(of: (secret.name, secret.key), field: "\(field).secretAccessKey", namespace: namespace)
            var token: String?
            if let selector = s3.sessionToken {
                token = try await value(of: (selector.name, selector.key), field: "\(field).sessionToken", namespace: namespace)
            }
            credentials = S3Credentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: token)
        } else {
            let own = try await ambient.credentials(for: namespace, field: field)
            // The operator's signed AssumeRole goes to its own STS over its own client, never
            // to the tenant's endpoint or with the tenant's TLS settings.
            credentials = s3.roleARN.map {
                own.assuming(roleARN: $0, sessionName: SecurityTokenService.sessionName("talos-etcd-backup.\(namespace)"),
                             externalID: namespace, bucketRegion: s3.region)
            } ?? own.source
            assumedAlready = true
        }
        var caBundle: [UInt8]?
        if let ca = s3.caBundleSecretRef {
            caBundle = try await bytes(of: (ca.name, ca.key), field: "\(field).caBundleSecretRef", namespace: namespace)
        }
        var configuration = S3Configuration(
            region: s3.region, endpoint: s3.endpoint, forcePathStyle: s3.forcePathStyle, caBundlePEM: caBundle,
            insecureSkipTLSVerify: s3.insecureSkipTLSVerify ?? Defaults.insecureSkipTLSVerify,
            credentials: credentials)
        if !assumedAlready {
            configuration.assumeRole = s3.roleARN.map {
                S3AssumeRole(roleARN: $0, sessionName: SecurityTokenService.sessionName("talos-etcd-backup.\(namespace)"), externalID: namespace)
            }
        }
        var serverSideEncryption: S3WriteSettings.ServerSideEncryption?
        if let sse = s3.serverSideEncryption {
            if let selector = sse.customerKeySecretRef {
                serverSideEncryption = .customerKey(try await customerKey(selector, field: "\(field).serverSideEncryption.customerKeySecretRef",
                                                                         namespace: namespace))
            } else {
                switch sse.type {
                case .aes256?: serverSideEncryption = .aes256
                case .kms?: serverSideEncryption = .kms(keyID: sse.kmsKeyID)
                case .unknown?, nil: break  // refused by validation before a backup gets here
                }
            }
        }
        var objectLock: S3WriteSettings.ObjectLock?
        if let lock = s3.objectLock, let days = lock.retainDays {
            switch lock.mode {
            case .governance?: objectLock = .init(mode: .governance, retainDays: days)
            case .compliance?: objectLock = .init(mode: .compliance, retainDays: days)
            case .unknown?, nil: break  // refused by validation before a backup gets here
            }
        }
        configuration.writeSettings = S3WriteSettings(serverSideEncryption: serverSideEncryption, storageClass: s3.storageClass,
                                                      objectLock: objectLock)
        return configuration
    }

    /// An SSE-C key from a Secret: 32 bytes, or their base64 (`openssl rand 32`, `openssl rand
    /// -base64 32`). Missing: `EncryptionConfigNotFound`; anything else: `EncryptionConfigInvalid`.
    func customerKey(_ selector: SecretKeySelector, field: String, namespace: String) async throws -> S3WriteSettings.CustomerKey {
        let bytes = try await self.bytes(of: (selector.name, selector.key), field: field, namespace: namespace, missing: .encryptionConfigNotFound)
        guard let key = S3WriteSettings.CustomerKey(stored: bytes) else {
            throw BackupFailure(reason: .encryptionConfigInvalid,
                                message: "Secret \(namespace)/\(selector.name) key \"\(selector.key)\" (named by \(field)) must hold a 256-bit SSE-C key: 32 bytes, or their base64 (openssl rand -base64 32)",
                                retryable: false)
        }
        return key
    }

    /// The label a Secret needs before the operator stores it beside a snapshot: talos-operator
    /// puts it on its `<controlplane>-state` Secret. Without it, anyone who may create a backup
    /// could have the operator copy any Secret of the namespace into a bucket of their choice.
    public static let stateLabel = (key: "talos.alperen.cloud/type", value: "state")

    /// The control plane's state to store beside its snapshot, as a Secret manifest (``StateManifest``):
    /// the Secret `spec.backupStorage.stateSecretRef` names (missing: `StateSecretNotFound`),
    /// else `<controlplane>-state`, talos-operator's, when it exists (missing: no state, nil).
    /// Either must carry ``stateLabel`` (else `StateSecretInvalid`, naming the command that adds it).
    public func stateManifest(_ spec: TalosEtcdBackupSpec, namespace: String) async throws -> [UInt8]? {
        let named = spec.backupStorage.stateSecretRef?.name
        let name = named ?? "\(spec.talosControlPlaneRef.name)-state"
        guard let secret = try await secrets.secret(namespace: namespace, name: name) else {
            guard named == nil else {
                throw BackupFailure(reason: .stateSecretNotFound,
                                    message: "Secret \(namespace)/\(name) named by spec.backupStorage.stateSecretRef not found: create it, or remove the field")
            }
            return nil
        }
        guard secret.labels[Self.stateLabel.key] == Self.stateLabel.value else {
            throw BackupFailure(reason: .stateSecretInvalid, message: """
                Secret \(namespace)/\(name)\(named == nil ? " (the default state Secret of control plane \(spec.talosControlPlaneRef.name))" : ", named by spec.backupStorage.stateSecretRef,") \
                is not labelled \(Self.stateLabel.key)=\(Self.stateLabel.value): only a Secret labelled as a control plane's state is stored \
                beside a snapshot; label it (kubectl label secret \(name) -n \(namespace) \(Self.stateLabel.key)=\(Self.stateLabel.value)), or \
                \(named == nil ? "rename it" : "remove the field")
                """)
        }
        return StateManifest.yaml(StateManifest.Secret(name: name, namespace: namespace, labels: secret.labels, type: secret.type ?? "Opaque",
                                                       data: secret.data))
    }
}
