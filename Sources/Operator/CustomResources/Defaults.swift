import KubernetesCore
/// Every default of the API, in one place. The CRD schema's `default:` values and
/// ``TalosEtcdBackupScheduleSpec/withDefaults()`` / ``TalosEtcdBackupSpec/withDefaults()`` both
/// read these constants, so the API server and the controllers can never disagree.
///
/// Three defaults are not in the CRD schema:
/// - `retention`: 5 only when `retentionPolicy` is unset too (the two are exclusive).
/// - `timeZone`: unset means UTC. It is left unset rather than defaulted to `UTC` because an
///   expression with a `CRON_TZ=` prefix and a `timeZone` is an error, and a defaulted
///   `timeZone` would turn every prefixed expression into one.
/// - `forcePathStyle`: true when `endpoint` is set, else false.
public enum Defaults {
    /// Successful backups kept when neither `retention` nor `retentionPolicy` is set (not in the
    /// CRD schema: a defaulted `retention` would clash with every `retentionPolicy`).
    public static let retention = 5
    public static let failedBackupsHistoryLimit = 3
    public static let deletionPolicy = DeletionPolicy.delete
    public static let paused = false
    public static let concurrencyPolicy = ConcurrencyPolicy.forbid
    public static let timeZone = "UTC"
    public static let s3Prefix = "talos-etcd-backups"
    public static let insecureSkipTLSVerify = false
    public static let zstdLevel = 3
}

extension TalosEtcdBackupScheduleSpec {
    /// This spec with every unset defaulted field filled in (not `timeZone`: see ``Defaults``).
    public func withDefaults() -> Self {
        var spec = self
        spec.retention = retention ?? (retentionPolicy == nil ? Defaults.retention : nil)
        spec.failedBackupsHistoryLimit = failedBackupsHistoryLimit ?? Defaults.failedBackupsHistoryLimit
        spec.paused = paused ?? Defaults.paused
        spec.concurrencyPolicy = concurrencyPolicy ?? Defaults.concurrencyPolicy
        spec.backupTemplate.spec = backupTemplate.spec.withDefaults()
        return spec
    }

    /// `concurrencyPolicy`, defaulted (an unsupported value stays `.unknown`: validation says so).
    public var effectiveConcurrencyPolicy: ConcurrencyPolicy { concurrencyPolicy ?? Defaults.concurrencyPolicy }
}

extension TalosEtcdBackupSpec {
    /// This spec with every unset defaulted field filled in.
    public func withDefaults() -> Self {
        var spec = self
        var s3 = spec.backupStorage.s3
        s3.prefix = s3.prefix ?? Defaults.s3Prefix
        s3.insecureSkipTLSVerify = s3.insecureSkipTLSVerify ?? Defaults.insecureSkipTLSVerify
        s3.forcePathStyle = s3.forcePathStyle ?? (s3.endpoint != nil)
        spec.backupStorage.s3 = s3
        spec.deletionPolicy = deletionPolicy ?? Defaults.deletionPolicy
        if var compression = spec.backupStorage.compression {
            compression.level = compression.level ?? Defaults.zstdLevel
            spec.backupStorage.compression = compression
        }
        return spec
    }
}
