import KubernetesCore
/// The two CustomResourceDefinitions (apiextensions.k8s.io/v1), generated from code.
///
/// `talos-etcd-backup crds` prints them and `deploy/crds/` holds that output; a test fails when
/// the two differ, so the manifests can never drift from the Swift types.
public enum CustomResourceDefinitions {
    /// Both CRDs: the schedule, then the backup.
    public static var all: [JSONValue] { [schedule, backup] }

    /// File name controller-gen would give a CRD: `<group>_<plural>.yaml`.
    public static func fileName(of crd: JSONValue) -> String {
        guard case .string(let name)? = crd["metadata"]?["name"] else { return "crd.yaml" }
        let plural = name.split(separator: ".").first.map(String.init) ?? name
        return "\(CustomResourcesGroup.group)_\(plural).yaml"
    }

    /// All CRDs as one multi-document YAML stream.
    public static func renderYAML() throws -> String {
        try all.map(YAML.render).joined(separator: "---\n")
    }

    public static var schedule: JSONValue {
        crd(
            kind: TalosEtcdBackupSchedule.kind, plural: TalosEtcdBackupSchedule.plural, shortName: "tebs",
            description: "TalosEtcdBackupSchedule takes etcd backups of a Talos control plane on a cron schedule and prunes old successful ones.",
            spec: scheduleSpec, status: scheduleStatus,
            columns: [
                column("Schedule", "string", ".spec.schedule", "Cron expression."),
                column("Paused", "boolean", ".spec.paused", "Whether new backups are suspended."),
                column("Last Backup", "date", ".status.lastSuccessfulBackupTime", "Completion time of the newest successful backup."),
                column("Next Backup", "date", ".status.nextScheduleTime", "When the next backup is due."),
                column("Age", "date", ".metadata.creationTimestamp", "Age of the schedule."),
            ])
    }

    public static var backup: JSONValue {
        crd(
            kind: TalosEtcdBackup.kind, plural: TalosEtcdBackup.plural, shortName: "teb",
            description: "TalosEtcdBackup is one etcd snapshot of a Talos control plane, streamed from a control-plane node into S3-compatible object storage.",
            spec: backupSpec("Desired state: which control plane to back up and where to store the snapshot."),
            status: backupStatus,
            columns: [
                column("Phase", "string", ".status.phase", "Pending, Running, Succeeded or Failed."),
                column("Size", "integer", ".status.size", "Size of the stored object in bytes."),
                column("Filename", "string", ".status.filename", "Object key of the stored snapshot."),
                column("Age", "date", ".metadata.creationTimestamp", "Age of the backup."),
            ])
    }

    // MARK: Schemas

    static var scheduleSpec: JSONValue {
        Schema.object(
            "Desired state: when to back up, what each backup is, and how many to keep.",
            required: ["schedule", "backupTemplate"],
            [
                "schedule": Schema.string(
                    "Cron expression in the Kubernetes CronJob format: five fields (minute hour day-of-month month day-of-week), @hourly/@daily/@weekly/@monthly/@yearly, optionally prefixed with CRON_TZ=<zone>. Check one with `talos-etcd-backup next-runs`.",
                    minLength: 1),
                "backupTemplate": Schema.object(
                    "Template of the TalosEtcdBackup objects the schedule creates.", required: ["spec"],
                    ["spec": backupSpec("Spec copied into each backup the schedule creates.")]),
                "retention": Schema.integer(
                    "Number of successful backups to keep (the newest by completion time); older successful ones are deleted (with their S3 objects unless deletionPolicy is Retain). Failed and running backups are never counted. Unset means \(Defaults.retention) when retentionPolicy is unset too; must not be set with retentionPolicy.",
                    minimum: 1),
                "retentionPolicy": Schema.object(
                    "Tiered retention with restic forget semantics, instead of retention: for each tier, successful backups are walked newest first by their scheduled time and the newest backup of each of the N most recent periods (in timeZone) that have one is kept; a backup is kept when any tier keeps it. 0 or unset turns a tier off; at least one tier must be above 0.",
                    [
                        "keepLast": Schema.integer("Keep the newest N successful backups.", minimum: 0, format: "int32"),
                        "keepHourly": Schema.integer("Keep the newest backup of each of the N most recent hours that have one.", minimum: 0, format: "int32"),
                        "keepDaily": Schema.integer("Keep the newest backup of each of the N most recent days that have one.", minimum: 0, format: "int32"),
                        "keepWeekly": Schema.integer("Keep the newest backup of each of the N most recent ISO weeks (Monday to Sunday) that have one.", minimum: 0, format: "int32"),
                        "keepMonthly": Schema.integer("Keep the newest backup of each of the N most recent months that have one.", minimum: 0, format: "int32"),
                        "keepYearly": Schema.integer("Keep the newest backup of each of the N most recent years that have one.", minimum: 0, format: "int32"),
                    ]),
                "paused": Schema.boolean(
                    "Suspends new backups while true; retention still applies.", defaultValue: Defaults.paused),
                "timeZone": Schema.string(
                    "IANA time zone the schedule is read in, such as Europe/Berlin. Unset means UTC. Must not be set when the schedule has a CRON_TZ= or TZ= prefix.",
                    minLength: 1),
                "startingDeadlineSeconds": Schema.integer(
                    "A run missed by more than this many seconds (for example while the operator was down) is skipped instead of caught up. Unset means no deadline.",
                    minimum: 0),
                "concurrencyPolicy": Schema.string(
                    "Forbid holds a due run while an earlier backup of this schedule is still active and starts it when that one has finished (unless startingDeadlineSeconds has passed by then), as a CronJob does; Allow starts it anyway.",
                    enumValues: ConcurrencyPolicy.allCases.map(\.rawValue), defaultValue: Defaults.concurrencyPolicy.rawValue),
                "failedBackupsHistoryLimit": Schema.integer(
                    "Number of failed backups to keep, oldest deleted first.", minimum: 0,
                    defaultValue: Defaults.failedBackupsHistoryLimit),
                "verification": Schema.object(
                    "Checks the retained successful backups again on a schedule of its own: each one's stored object (and state) is read back, at most --verification-bandwidth, and compared with its status (size and SHA-256; for a plain snapshot also etcd's trailer, the bbolt structure, revision and key count). An encrypted backup is checked as stored bytes (the operator holds no identity). Unset: never.",
                    required: ["schedule"],
                    [
                        "schedule": Schema.string("Cron expression of the verification runs, in the same format as schedule.", minLength: 1),
                        "timeZone": Schema.string("IANA time zone of the verification schedule. Unset means the schedule's timeZone.", minLength: 1),
                    ]),
            ])
    }

    static var scheduleStatus: JSONValue {
        Schema.object(
            "Observed state of the schedule.",
            [
                "lastScheduleTime": Schema.dateTime("Scheduled time of the most recent run the controller acted on."),
                "lastSuccessfulBackupTime": Schema.dateTime("Completion time of the newest successful backup."),
                "nextScheduleTime": Schema.dateTime("When the next backup is due."),
                "activeBackups": Schema.array(
                    "Names of this schedule's backups that have neither succeeded nor failed.",
                    items: Schema.string("Name of an active TalosEtcdBackup."), listType: "set"),
                "retainedBackups": Schema.object(
                    "How many successful backups retention keeps now, per tier (a backup may count in several), and in all.",
                    [
                        "last": Schema.integer("Kept by keepLast (or retention).", minimum: 0),
                        "hourly": Schema.integer("Kept by keepHourly.", minimum: 0),
                        "daily": Schema.integer("Kept by keepDaily.", minimum: 0),
                        "weekly": Schema.integer("Kept by keepWeekly.", minimum: 0),
                        "monthly": Schema.integer("Kept by keepMonthly.", minimum: 0),
                        "yearly": Schema.integer("Kept by keepYearly.", minimum: 0),
                        "total": Schema.integer("Successful backups kept in all.", minimum: 0),
                    ]),
                "lastBackupNowRequest": Schema.string("The last talos.alperen.cloud/backup-now annotation value a backup was made for."),
                "lastVerificationTime": Schema.dateTime("Scheduled time of the last verification run: every retained successful backup not verified since is checked again."),
                "nextVerificationTime": Schema.dateTime("When the next verification run is due."),
                "verifications": Schema.object(
                    "The retained successful backups' latest verification results.",
                    [
                        "passed": Schema.integer("Backups whose latest verification passed.", minimum: 0),
                        "failed": Schema.integer("Backups whose latest verification failed: an object missing, changed or not a sound snapshot.", minimum: 0),
                        "pending": Schema.integer("Backups not verified since the last verification run was due.", minimum: 0),
                    ]),
                "observedGeneration": Schema.integer("The metadata.generation the status was computed for.", minimum: 0),
                "conditions": Schema.conditions,
            ])
    }

    static func backupSpec(_ description: String) -> JSONValue {
        Schema.object(
            description, required: ["talosControlPlaneRef", "backupStorage"],
            [
                "deletionPolicy": Schema.string(
                    "What deleting this backup (by hand, by retention, with its schedule or namespace) does to its S3 object: Delete deletes it, Retain leaves it in the bucket (prune it with a bucket lifecycle rule).",
                    enumValues: DeletionPolicy.allCases.map(\.rawValue), defaultValue: Defaults.deletionPolicy.rawValue),
                "talosControlPlaneRef": Schema.object(
                    "The Talos control plane to back up. Its talosconfig is read from Secret <name>-talosconfig in the same namespace (key talosconfig, <name>.talosconfig or config).",
                    required: ["name"],
                    ["name": Schema.string("Name of the control plane.", minLength: 1)]),
                "backupStorage": Schema.object(
                    "Where and how the snapshot is stored.", required: ["s3"],
                    [
                        "s3": s3Storage,
                        "compression": Schema.object(
                            "Compression of the snapshot before upload (and before encryption), streaming; the object key gets .zst. Unset means no compression.",
                            required: ["type"],
                            [
                                "type": Schema.string(
                                    "Compression algorithm.", enumValues: Compression.Algorithm.allCases.map(\.rawValue)),
                                "level": Schema.integer(
                                    "Compression level (default \(Defaults.zstdLevel)).",
                                    minimum: ValidationLimits.zstdLevels.lowerBound,
                                    maximum: ValidationLimits.zstdLevels.upperBound, format: "int32"),
                            ]),
                        "encryption": Schema.object(
                            "Encryption of the snapshot before upload (after compression), streaming: no plaintext byte reaches the bucket; the object key gets .age. Unset means no encryption.",
                            [
                                "age": Schema.object(
                                    "age v1 encryption to X25519 recipients (recipients, recipientsSecretRef, or both; at least one recipient in all). The operator needs only recipients; the identity (private key) that decrypts stays with whoever restores.",
                                    [
                                        "recipients": Schema.array(
                                            "age X25519 recipients (age1...); an invalid entry fails the backup naming it.",
                                            items: Schema.string("One age recipient.", minLength: 1)),
                                        "recipientsSecretRef": Schema.secretKeySelector(
                                            "Secret key holding more recipients, one per line, # comments and blank lines allowed (the age -R file format). A missing Secret or key fails the backup with reason EncryptionConfigNotFound."),
                                    ]),
                            ]),
                        "stateSecretRef": Schema.object(
                            "Secret stored beside each snapshot as the control plane's state (PKI, the keys that decrypt the Secrets inside etcd), as a Secret manifest encoded as the snapshot is, never in plain text when the snapshot is encrypted. Unset means <controlplane>-state (talos-operator's) when it exists; a Secret named here that is missing fails the backup with reason StateSecretNotFound. Either must be labelled talos.alperen.cloud/type=state (else StateSecretInvalid), so that no other Secret of the namespace can be copied into a bucket.",
                            required: ["name"],
                            ["name": Schema.string("Name of the Secret, in the backup's namespace.", minLength: 1, maxLength: 253)]),
                    ]),
            ])
    }

    static var s3Storage: JSONValue {
        Schema.object(
            "S3 or S3-compatible bucket the snapshot is written to.",
            required: ["bucket", "region"],
            [
                "bucket": Schema.string("Bucket name.", minLength: 3, maxLength: 63),
                "region": Schema.string("Region of the bucket, used in request signatures (and in the AWS host name when endpoint is unset).",
                                        minLength: 1, pattern: "^[A-Za-z0-9_-]+$", maxLength: 64),
                "accessKeyID": Schema.secretKeySelector(
                    "Secret key holding the access key ID; set with secretAccessKey, or neither for the operator's ambient credentials (web identity, a container credentials endpoint, its environment), which only the namespaces in its --ambient-s3-credentials-namespaces may use (else CredentialsNotFound)."),
                "secretAccessKey": Schema.secretKeySelector("Secret key holding the secret access key; set with accessKeyID."),
                "sessionToken": Schema.secretKeySelector(
                    "Secret key holding the session token of temporary keys (sent as x-amz-security-token); with accessKeyID and secretAccessKey only."),
                "roleARN": Schema.string(
                    "IAM role to assume (STS AssumeRole, at endpoint when set, else AWS STS of the region) with the keys or the ambient credentials; the role's temporary credentials, renewed before they expire, sign every request. The operator sends the backup's namespace as ExternalId and talos-etcd-backup.<namespace> as the session name: the role's trust policy should require the external ID.",
                    minLength: 1, maxLength: 2048),
                "endpoint": Schema.string(
                    "URL of an S3-compatible endpoint, such as https://minio.example.com. Unset means AWS for the region.",
                    minLength: 1),
                "insecureSkipTLSVerify": Schema.boolean(
                    "Skips verification of the endpoint's TLS certificate. Use caBundleSecretRef instead where possible.",
                    defaultValue: Defaults.insecureSkipTLSVerify),
                "insecureHTTP": Schema.boolean(
                    "Allows an http:// endpoint. Without it the operator refuses one (InvalidSpec): the snapshot, every Secret of the cluster unless encrypted, would travel in clear."),
                "prefix": Schema.string(
                    "Key prefix; objects are stored as <prefix>/<namespace>/<controlplane>/<backup>.db.",
                    minLength: 1, defaultValue: Defaults.s3Prefix),
                "forcePathStyle": Schema.boolean(
                    "Addresses the bucket as <endpoint>/<bucket> instead of <bucket>.<endpoint>. Defaults to true when endpoint is set, else false."),
                "caBundleSecretRef": Schema.secretKeySelector(
                    "Secret key holding PEM CA certificates to trust for the endpoint."),
                "serverSideEncryption": Schema.object(
                    "Server-side encryption of every object the operator writes (snapshot, state, the copy that records the metadata): type AES256 (SSE-S3) or aws:kms (SSE-KMS), or customerKeySecretRef (SSE-C). Unset: the bucket's default. Independent of age encryption, which the store cannot undo.",
                    [
                        "type": Schema.string("AES256 or aws:kms; unset with customerKeySecretRef.", enumValues: ServerSideEncryption.Kind.allCases.map(\.rawValue)),
                        "kmsKeyID": Schema.string("With aws:kms: the KMS key's ID, ARN or alias (unset: the bucket's or the account's default key).",
                                                  minLength: 1, maxLength: 2048),
                        "customerKeySecretRef": Schema.secretKeySelector(
                            "SSE-C: Secret key holding a 256-bit key (32 bytes, or their base64), sent with every write and read of the objects (the store keeps only its MD5; lose the key and the backups are unreadable). Instead of type."),
                    ]),
                "storageClass": Schema.string(
                    "Storage class of every object written: STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, ... (passed through as the store names them). Unset: the bucket's default.",
                    pattern: "^[A-Z0-9_]{1,64}$"),
                "objectLock": Schema.object(
                    "S3 Object Lock on every object written (snapshot, state, the copy that records the metadata): nobody can delete or overwrite them for retainDays, the operator included. The bucket must have been created with Object Lock. Retention deletes a backup only once its lock has expired; deleting a backup while it holds leaves the objects in the store (ObjectLeftInStore, reason ObjectLocked). Unset: the bucket's default retention, if any.",
                    required: ["mode", "retainDays"], [
                        "mode": Schema.string("GOVERNANCE (lifted only by a principal allowed s3:BypassGovernanceRetention, which the operator never uses) or COMPLIANCE (nobody, the account's root included).",
                                              enumValues: ObjectLockSettings.Mode.allCases.map(\.rawValue)),
                        "retainDays": Schema.integer("Days each object stays locked after it is written.",
                                                     minimum: ValidationLimits.objectLockDays.lowerBound, maximum: ValidationLimits.objectLockDays.upperBound, format: "int32"),
                    ]),
            ])
    }

    static var backupStatus: JSONValue {
        Schema.object(
            "Observed state of the backup.",
            [
                "phase": Schema.string(
                    "Pending, Running, Succeeded or Failed. Succeeded and Failed are final.",
                    enumValues: BackupPhase.allCases.map(\.rawValue)),
                "filename": Schema.string("Object key of the stored snapshot; set when the upload completed, and what deleting the backup deletes."),
                "bucket": Schema.string("Bucket the snapshot is stored in; set when the upload completed."),
                "size": Schema.integer("Size of the stored object in bytes.", minimum: 0),
                "sha256": Schema.string("Hex SHA-256 of the stored object (compressed and encrypted when those are on), to check a download before decrypting it.", pattern: "^[0-9a-f]{64}$"),
                "snapshotSHA256": Schema.string("Hex SHA-256 of the plain etcd snapshot (what talosctl bootstrap --recover-from receives); set when compression or encryption is on.", pattern: "^[0-9a-f]{64}$"),
                "snapshotSize": Schema.integer("Size of the plain etcd snapshot in bytes; set when compression or encryption is on.", minimum: 0),
                "compression": Schema.string("Compression of the stored object, for example zstd; unset when uncompressed."),
                "encryptedTo": Schema.array(
                    "Fingerprints of the age recipients the object is encrypted to (the first 16 hex digits of the SHA-256 of each age1... recipient; never keys); unset when unencrypted.",
                    items: Schema.string("One recipient's fingerprint.", pattern: "^[0-9a-f]{16}$")),
                "serverSideEncryption": Schema.string("Server-side encryption the objects were written with: AES256, aws:kms or SSE-C (never a key); unset: the bucket's default."),
                "lockedUntil": Schema.dateTime("Until when S3 Object Lock keeps the stored objects from deletion, as the store reports it; unset when they are not locked. Retention deletes the backup only after it; deleting the backup earlier leaves the objects in the store."),
                "revision": Schema.integer("etcd revision of the snapshot, read from its bbolt structure as it streamed (as etcdctl snapshot status reports it).", minimum: 0),
                "totalKeys": Schema.integer("Keys in the snapshot over all of its buckets, read from its bbolt structure (etcdctl snapshot status's total keys).", minimum: 0),
                "node": Schema.string("Talos node that served the snapshot."),
                "stateFilename": Schema.string("Object key of the control plane's state (its state Secret as a manifest, encoded as the snapshot is) stored beside the snapshot; unset when there was no state Secret."),
                "stateSHA256": Schema.string("Hex SHA-256 of the stored state object.", pattern: "^[0-9a-f]{64}$"),
                "startTime": Schema.dateTime("When the first attempt started."),
                "completionTime": Schema.dateTime("When the backup succeeded or finally failed."),
                "attempts": Schema.integer("Number of attempts started (at most 3; a backup found with 3 started and none finished fails with AttemptsExhausted).", minimum: 0, format: "int32"),
                "attemptedBy": Schema.string("Operator instance that started the current attempt; an attempt writes its result only while attempts and attemptedBy still name it."),
                "lastVerifiedTime": Schema.dateTime("When the stored objects were last read back and checked (the schedule's spec.verification)."),
                "verification": Schema.object(
                    "What the latest verification of the stored objects found.",
                    [
                        "result": Schema.string("Passed, Failed (an object missing, changed or not a sound snapshot) or Error (the store could not be read; retried).",
                                                enumValues: VerificationResult.Outcome.allCases.map(\.rawValue)),
                        "message": Schema.string("What was checked, or what is wrong."),
                    ]),
                "conditions": Schema.conditions,
            ])
    }

    // MARK: Document

    static func column(_ name: String, _ type: String, _ path: String, _ description: String) -> JSONValue {
        .object([
            "name": .string(name), "type": .string(type), "jsonPath": .string(path), "description": .string(description),
        ])
    }

    static func crd(
        kind: String, plural: String, shortName: String, description: String, spec: JSONValue, status: JSONValue,
        columns: [JSONValue]
    ) -> JSONValue {
        let root = Schema.object(
            description, required: ["spec"],
            [
                "apiVersion": Schema.string(
                    "Versioned schema of this representation of an object; servers convert recognized schemas to the latest internal value."),
                "kind": Schema.string("REST resource this object represents, in CamelCase."),
                "metadata": .object(["type": .string("object")]),
                "spec": spec,
                "status": status,
            ])
        return .object([
            "apiVersion": .string("apiextensions.k8s.io/v1"),
            "kind": .string("CustomResourceDefinition"),
            "metadata": .object(["name": .string("\(plural).\(CustomResourcesGroup.group)")]),
            "spec": .object([
                "group": .string(CustomResourcesGroup.group),
                "names": .object([
                    "kind": .string(kind),
                    "listKind": .string("\(kind)List"),
                    "plural": .string(plural),
                    "singular": .string(kind.lowercased()),
                    "shortNames": .array([.string(shortName)]),
                    "categories": .array([.string("talos")]),
                ]),
                "scope": .string("Namespaced"),
                "versions": .array([
                    .object([
                        "name": .string(CustomResourcesGroup.version),
                        "served": .bool(true),
                        "storage": .bool(true),
                        "subresources": .object(["status": .object([:])]),
                        "additionalPrinterColumns": .array(columns),
                        "schema": .object(["openAPIV3Schema": root]),
                    ])
                ]),
            ]),
        ])
    }
}
