import KubernetesCore
import Foundation

/// The API group and version both kinds are served under, as the Go talos-operator defines them.
public enum CustomResourcesGroup {
    public static let group = "talos.alperen.cloud"
    public static let version = "v1alpha1"
    public static let apiVersion = "\(group)/\(version)"
}

/// One etcd backup of a Talos control plane: a snapshot taken over the Talos API and stored as
/// one S3 object. Created by hand or by a ``TalosEtcdBackupSchedule``.
public struct TalosEtcdBackup: Codable, Sendable, Equatable {
    public static let kind = "TalosEtcdBackup"
    public static let plural = "talosetcdbackups"
    /// Annotation of a backup made by `talos-etcd-backup adopt` for an object already in the
    /// bucket: its `s3://` URL. The controller never takes a snapshot for such a backup.
    public static let adoptedFromAnnotation = "talos.alperen.cloud/adopted-from"
    /// Annotation of an adopted backup: the `backup-uid` the object carries (the UID of the
    /// backup that stored it), so that deleting the adopted backup may delete the object.
    public static let adoptedObjectUIDAnnotation = "talos.alperen.cloud/adopted-object-uid"

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    @RequiredField public var spec: TalosEtcdBackupSpec
    public var status: TalosEtcdBackupStatus?

    public init(metadata: ObjectMeta, spec: TalosEtcdBackupSpec, status: TalosEtcdBackupStatus? = nil) {
        self.apiVersion = CustomResourcesGroup.apiVersion
        self.kind = Self.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// What to back up and where to put it.
public struct TalosEtcdBackupSpec: Codable, Sendable, Equatable, EmptyRepresentable {
    @RequiredField public var talosControlPlaneRef: TalosControlPlaneReference
    @RequiredField public var backupStorage: BackupStorage
    /// `Delete` (the default): deleting the backup deletes its object; `Retain` keeps it.
    public var deletionPolicy: DeletionPolicy?

    public init(talosControlPlaneRef: TalosControlPlaneReference, backupStorage: BackupStorage, deletionPolicy: DeletionPolicy? = nil) {
        self.talosControlPlaneRef = talosControlPlaneRef
        self.backupStorage = backupStorage
        self.deletionPolicy = deletionPolicy
    }

    public static var empty: Self { Self(talosControlPlaneRef: .empty, backupStorage: .empty) }
}

/// What deleting a backup does to its stored object (as Velero's and CSI's deletion policies).
public enum DeletionPolicy: OpenEnum {
    /// The object is deleted with the backup.
    case delete
    /// The object stays in the store; only the Kubernetes object goes.
    case retain
    /// A value this version does not support: validation refuses it.
    case unknown(String)

    public static let allCases: [Self] = [.delete, .retain]

    public var rawValue: String {
        switch self {
        case .delete: "Delete"
        case .retain: "Retain"
        case .unknown(let value): value
        }
    }
}

/// Names the control plane whose talosconfig Secret (`<name>-talosconfig`) gives access to it.
public struct TalosControlPlaneReference: Codable, Sendable, Equatable, EmptyRepresentable {
    @RequiredField public var name: String

    public init(name: String) { self.name = name }

    public static var empty: Self { Self(name: "") }
}

/// Where and how the snapshot is stored.
public struct BackupStorage: Codable, Sendable, Equatable, EmptyRepresentable {
    @RequiredField public var s3: S3Storage
    public var compression: Compression?
    public var encryption: Encryption?
    /// The Secret stored beside each snapshot as the control plane's state (its PKI and the
    /// keys that decrypt the Secrets inside etcd); unset means `<controlplane>-state`, the
    /// talos-operator's, when it exists.
    public var stateSecretRef: SecretReference?

    public init(s3: S3Storage, compression: Compression? = nil, encryption: Encryption? = nil, stateSecretRef: SecretReference? = nil) {
        self.s3 = s3
        self.compression = compression
        self.encryption = encryption
        self.stateSecretRef = stateSecretRef
    }

    public static var empty: Self { Self(s3: .empty) }
}

/// An S3 or S3-compatible bucket and the credentials to write to it.
public struct S3Storage: Codable, Sendable, Equatable, EmptyRepresentable {
    @RequiredField public var bucket: String
    @RequiredField public var region: String
    /// The static key pair, both or neither. Neither: the operator's ambient credentials (web
    /// identity, a container credentials endpoint, its environment), in the namespaces its
    /// `--ambient-s3-credentials-namespaces` allows.
    public var accessKeyID: SecretKeySelector?
    public var secretAccessKey: SecretKeySelector?
    /// The session token that comes with temporary keys (`x-amz-security-token`).
    public var sessionToken: SecretKeySelector?
    /// A role to assume (STS AssumeRole) with the keys or the ambient credentials; the
    /// role's credentials sign every request. The operator sends the backup's namespace as
    /// the external ID, which the role's trust policy should require.
    public var roleARN: String?
    public var endpoint: String?
    public var insecureSkipTLSVerify: Bool?
    /// Allows an `http://` endpoint, which the operator refuses otherwise: the credentials are
    /// only signed, but the snapshot (every Secret of the cluster, unless encrypted) travels
    /// in clear.
    public var insecureHTTP: Bool?
    public var prefix: String?
    public var forcePathStyle: Bool?
    public var caBundleSecretRef: SecretKeySelector?
    /// Server-side encryption of every object written (SSE-S3 or SSE-KMS); unset: the bucket's default.
    public var serverSideEncryption: ServerSideEncryption?
    /// Storage class of every object written; unset: the bucket's default (STANDARD).
    public var storageClass: String?
    /// S3 Object Lock on every object written; unset: the bucket's default retention, if any.
    public var objectLock: ObjectLockSettings?

    public init(
        bucket: String, region: String, accessKeyID: SecretKeySelector? = nil, secretAccessKey: SecretKeySelector? = nil,
        endpoint: String? = nil, insecureSkipTLSVerify: Bool? = nil, prefix: String? = nil,
        forcePathStyle: Bool? = nil, caBundleSecretRef: SecretKeySelector? = nil, insecureHTTP: Bool? = nil
    ) {
        self.insecureHTTP = insecureHTTP
        self.bucket = bucket
        self.region = region
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.endpoint = endpoint
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.prefix = prefix
        self.forcePathStyle = forcePathStyle
        self.caBundleSecretRef = caBundleSecretRef
    }

    public static var empty: Self { Self(bucket: "", region: "") }
}

/// Server-side encryption the store applies to every object the operator writes (on top of, or
/// instead of, age): SSE-S3 (`AES256`), SSE-KMS (`aws:kms`, with the bucket's or AWS's
/// default key unless `kmsKeyID` names one), or SSE-C (a key of the customer's from a Secret).
public struct ServerSideEncryption: Codable, Sendable, Equatable {
    public enum Kind: OpenEnum {
        case aes256
        case kms
        /// A value this version does not support: validation refuses it.
        case unknown(String)

        public static let allCases: [Self] = [.aes256, .kms]

        public var rawValue: String {
            switch self {
            case .aes256: "AES256"
            case .kms: "aws:kms"
            case .unknown(let value): value
            }
        }
    }

    /// `AES256` or `aws:kms`; unset with ``customerKeySecretRef``.
    public var type: Kind?
    /// The KMS key (ID, ARN or alias) for `aws:kms`.
    public var kmsKeyID: String?
    /// SSE-C: the Secret key holding the customer's 256-bit key (32 bytes, or their base64).
    public var customerKeySecretRef: SecretKeySelector?

    public init(type: Kind? = nil, kmsKeyID: String? = nil, customerKeySecretRef: SecretKeySelector? = nil) {
        self.type = type
        self.kmsKeyID = kmsKeyID
        self.customerKeySecretRef = customerKeySecretRef
    }
}

/// S3 Object Lock on every object the operator writes (snapshot, state, the copy that records
/// the metadata): neither the operator, nor a stolen key, nor ransomware can delete or overwrite
/// them until `retainDays` have passed (`COMPLIANCE`: nobody, the account's root included;
/// `GOVERNANCE`: nobody without `s3:BypassGovernanceRetention`, which the operator never uses).
/// The bucket must have been created with Object Lock.
public struct ObjectLockSettings: Codable, Sendable, Equatable {
    public enum Mode: OpenEnum {
        case governance
        case compliance
        /// A value this version does not support: validation refuses it.
        case unknown(String)

        public static let allCases: [Self] = [.governance, .compliance]

        public var rawValue: String {
            switch self {
            case .governance: "GOVERNANCE"
            case .compliance: "COMPLIANCE"
            case .unknown(let value): value
            }
        }
    }

    /// Required: `GOVERNANCE` or `COMPLIANCE`.
    public var mode: Mode?
    /// Required: days each object stays locked after it is written (1 to 36500).
    public var retainDays: Int?

    public init(mode: Mode? = nil, retainDays: Int? = nil) {
        self.mode = mode
        self.retainDays = retainDays
    }
}

/// A Secret in the resource's own namespace, as a whole.
public struct SecretReference: Codable, Sendable, Equatable {
    @RequiredField public var name: String

    public init(name: String) { self.name = name }
}

/// A key of a Secret in the resource's own namespace (`corev1.SecretKeySelector` without
/// `optional`: every reference here is needed).
public struct SecretKeySelector: Codable, Sendable, Hashable, EmptyRepresentable {
    @RequiredField public var name: String
    @RequiredField public var key: String

    public init(name: String, key: String) {
        self.name = name
        self.key = key
    }

    public static var empty: Self { Self(name: "", key: "") }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(key)
    }
}

/// Compresses the snapshot before upload.
public struct Compression: Codable, Sendable, Equatable {
    /// The only algorithm today; the field exists so others can be added without a new version.
    public enum Algorithm: OpenEnum {
        case zstd
        /// A value this version does not support: validation refuses it.
        case unknown(String)

        public static let allCases: [Self] = [.zstd]

        public var rawValue: String {
            switch self {
            case .zstd: "zstd"
            case .unknown(let value): value
            }
        }
    }

    @RequiredField public var type: Algorithm
    public var level: Int?

    public init(type: Algorithm, level: Int? = nil) {
        self.type = type
        self.level = level
    }
}

/// Encrypts the snapshot before upload.
public struct Encryption: Codable, Sendable, Equatable {
    public var age: AgeEncryption?

    public init(age: AgeEncryption?) { self.age = age }
}

/// age (X25519) recipients: listed inline, in a Secret key (one per line), or both.
public struct AgeEncryption: Codable, Sendable, Equatable {
    public var recipients: [String]?
    public var recipientsSecretRef: SecretKeySelector?

    public init(recipients: [String]? = nil, recipientsSecretRef: SecretKeySelector? = nil) {
        self.recipients = recipients
        self.recipientsSecretRef = recipientsSecretRef
    }
}

/// Lifecycle of one backup.
public enum BackupPhase: String, Codable, Sendable, CaseIterable {
    case pending = "Pending"
    case running = "Running"
    case succeeded = "Succeeded"
    case failed = "Failed"

    /// Succeeded and Failed backups are never run again.
    public var isFinished: Bool { self == .succeeded || self == .failed }
}

/// What happened to one backup.
public struct TalosEtcdBackupStatus: Codable, Sendable, Equatable {
    public var phase: BackupPhase?
    public var filename: String?
    public var bucket: String?
    public var size: Int64?
    /// Hex SHA-256 of the stored object (after compression and encryption).
    public var sha256: String?
    /// Hex SHA-256 and size of the plain snapshot, when what is stored differs from it.
    public var snapshotSHA256: String?
    public var snapshotSize: Int64?
    /// `zstd` when the stored object is compressed.
    public var compression: String?
    /// Fingerprints of the age recipients, when the stored object is encrypted.
    public var encryptedTo: [String]?
    /// The server-side encryption the objects were written with: `AES256`, `aws:kms` or
    /// `SSE-C` (never a key); unset: the bucket's default.
    public var serverSideEncryption: String?
    /// Until when S3 Object Lock keeps the stored objects from deletion (the latest retention
    /// date the store reports on them); unset when they are not locked. Retention deletes
    /// the backup only after it, and deleting the backup earlier leaves them in the store.
    public var lockedUntil: KubeTime?
    /// The etcd revision and the number of keys over all buckets, read from the snapshot's
    /// bbolt structure as it streamed (what `etcdctl snapshot status` reports).
    public var revision: Int64?
    public var totalKeys: Int64?
    public var node: String?
    /// Object key and hex SHA-256 of the control plane's state stored beside the snapshot
    /// (talos-operator's `stateFilename`); unset when no state Secret was found.
    public var stateFilename: String?
    public var stateSHA256: String?
    public var startTime: KubeTime?
    public var completionTime: KubeTime?
    public var attempts: Int?
    /// The operator instance that started the current attempt: with `attempts`, the fencing
    /// token an attempt's result must still match to be written.
    public var attemptedBy: String?
    /// When the stored objects were last read back and checked (its schedule's
    /// `spec.verification`), and what that found.
    public var lastVerifiedTime: KubeTime?
    public var verification: VerificationResult?
    public var conditions: [Condition]?

    public init() {}
}

/// What the latest verification of a backup's stored objects found.
public struct VerificationResult: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable, CaseIterable {
        /// The objects are there and match the record.
        case passed = "Passed"
        /// An object is missing, changed, or not a sound snapshot.
        case failed = "Failed"
        /// The store could not be read (credentials, network): retried; says nothing of the object.
        case error = "Error"
    }

    public var result: Outcome?
    public var message: String?

    public init(result: Outcome, message: String) {
        self.result = result
        self.message = message
    }
}

extension TalosEtcdBackup: KubernetesObject {
    public static let resourceType = ResourceType(
        group: CustomResourcesGroup.group, version: CustomResourcesGroup.version, plural: plural, kind: kind)
}
