import CustomResources
import Foundation
import KubernetesClient
import Testing

@Suite("Validation reports every problem with its field path")
struct ValidationTests {
    func schedule(_ json: String) throws -> TalosEtcdBackupSchedule {
        try JSONDecoder().decode(TalosEtcdBackupSchedule.self, from: Data(json.utf8))
    }

    @Test("an empty spec names every required field at once")
    func missingRequiredFields() throws {
        let empty = try schedule(#"{"apiVersion":"talos.alperen.cloud/v1alpha1","kind":"TalosEtcdBackupSchedule","metadata":{"name":"s"},"spec":{}}"#)
        #expect(empty.validate().map(\.description) == [
            "spec.schedule: required",
            "spec.backupTemplate.spec.talosControlPlaneRef.name: required",
            "spec.backupTemplate.spec.backupStorage.s3.bucket: required",
            "spec.backupTemplate.spec.backupStorage.s3.region: required",
        ])
    }

    @Test("S3 credentials: both keys or neither, a session token only with them, a role ARN that is one")
    func credentialFields() throws {
        let key = SecretKeySelector(name: "s3", key: "id")
        var spec = TalosEtcdBackupSpec(talosControlPlaneRef: .init(name: "cp"), backupStorage: BackupStorage(s3: S3Storage(bucket: "etcd-backups", region: "us-east-1")))
        #expect(spec.validate(at: "spec").isEmpty, "neither key: the operator's ambient credentials")
        spec.backupStorage.s3.accessKeyID = key
        #expect(spec.validate(at: "spec").map(\.description) == ["spec.backupStorage.s3.secretAccessKey: required with accessKeyID"])
        spec.backupStorage.s3.accessKeyID = nil
        spec.backupStorage.s3.secretAccessKey = key
        spec.backupStorage.s3.sessionToken = key
        #expect(spec.validate(at: "spec").map(\.description) == [
            "spec.backupStorage.s3.accessKeyID: required with secretAccessKey",
            "spec.backupStorage.s3.sessionToken: goes with accessKeyID and secretAccessKey only",
        ])
        spec.backupStorage.s3.accessKeyID = key
        spec.backupStorage.s3.sessionToken = SecretKeySelector(name: "s3", key: "bad key")
        #expect(spec.validate(at: "spec").map(\.description).first?.hasPrefix("spec.backupStorage.s3.sessionToken.key:") == true)
        spec.backupStorage.s3.sessionToken = key
        for good in ["arn:aws:iam::123456789012:role/etcd-backup", "arn:aws-cn:iam::123456789012:role/path/to/r", "arn:aws:iam:::role/rgw-role"] {
            spec.backupStorage.s3.roleARN = good
            #expect(spec.validate(at: "spec").isEmpty, "\(good)")
        }
        for bad in ["", "role/x", "arn:aws:s3:::bucket", "arn:aws:iam::12ab:role/x", "arn:aws:iam::1:user/x", "arn:aws:iam::1:role/", "arn:aws:iam::1:role/a b"] {
            spec.backupStorage.s3.roleARN = bad
            #expect(spec.validate(at: "spec").map(\.description).first?.hasPrefix("spec.backupStorage.s3.roleARN: ") == true, "\(bad)")
        }
    }

    @Test("bad values everywhere are all reported")
    func badValues() throws {
        let name = String(repeating: "a", count: 64)
        let bad = try schedule("""
            {"apiVersion":"talos.alperen.cloud/v1alpha1","kind":"TalosEtcdBackupSchedule","metadata":{"name":"\(name)"},
             "spec":{"schedule":"0 25 * * *","retention":0,"startingDeadlineSeconds":-1,"failedBackupsHistoryLimit":-2,
              "concurrencyPolicy":"Replace",
              "backupTemplate":{"spec":{"talosControlPlaneRef":{"name":"My_CP"},
               "backupStorage":{"s3":{"bucket":"Bad_Bucket","region":"evil.example/x",
                 "accessKeyID":{"name":"creds","key":"bad key"},"secretAccessKey":{"name":"creds","key":"secret"},
                 "endpoint":"ftp://x","prefix":"/lead","caBundleSecretRef":{"name":"","key":"ca.crt"}},
                "compression":{"type":"gzip","level":30},
                "encryption":{"age":{"recipients":["age1short"]}}}}}}}
            """)
        #expect(bad.validate().map(\.description) == [
            "metadata.name: \"\(name)\" is 64 characters; a schedule name may have at most 63 because it becomes the value of label talos.alperen.cloud/backup-schedule on its backups",
            "spec.schedule: hour field \"25\": 25 is out of range 0-23",
            "spec.retention: must be at least 1, not 0",
            "spec.startingDeadlineSeconds: must be 0 or more, not -1",
            "spec.failedBackupsHistoryLimit: must be 0 or more, not -2",
            "spec.concurrencyPolicy: unsupported value \"Replace\"; supported: Forbid, Allow",
            "spec.backupTemplate.spec.talosControlPlaneRef.name: \"My_CP\" is not a valid object name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
            "spec.backupTemplate.spec.backupStorage.s3.bucket: \"Bad_Bucket\" is not a valid S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit",
            "spec.backupTemplate.spec.backupStorage.s3.region: \"evil.example/x\" is not a region: use 1 to 64 letters, digits, '-' and '_', such as us-east-1",
            "spec.backupTemplate.spec.backupStorage.s3.accessKeyID.key: \"bad key\" is not a valid Secret key: use letters, digits, '-', '_' and '.'",
            "spec.backupTemplate.spec.backupStorage.s3.endpoint: \"ftp://x\" is not an http(s) URL such as https://minio.example.com",
            "spec.backupTemplate.spec.backupStorage.s3.prefix: \"/lead\" must not start or end with '/' or contain '//'",
            "spec.backupTemplate.spec.backupStorage.s3.caBundleSecretRef.name: required",
            "spec.backupTemplate.spec.backupStorage.compression.type: unsupported value \"gzip\"; supported: zstd",
            "spec.backupTemplate.spec.backupStorage.compression.level: must be between 1 and 19, not 30",
            "spec.backupTemplate.spec.backupStorage.encryption.age.recipients[0]: not an age1... recipient (no separator or checksum)",
        ])
    }

    @Test("time zone problems point at the field they come from")
    func timeZones() throws {
        var spec = try seedSchedule().spec
        spec.timeZone = "Europe/Berln"
        #expect(spec.validate(at: "spec").map(\.description)
            == ["spec.timeZone: unknown time zone \"Europe/Berln\"; expected an IANA name such as UTC or Europe/Berlin"])
        spec.timeZone = "UTC"
        spec.schedule = "CRON_TZ=Europe/Berlin 0 2 * * *"
        #expect(spec.validate(at: "spec").map(\.path) == ["spec.timeZone"])
        spec.timeZone = nil
        spec.schedule = "CRON_TZ=Nowhere/Land 0 2 * * *"
        #expect(spec.validate(at: "spec").map(\.path) == ["spec.schedule"])
        spec.schedule = "CRON_TZ=Europe/Berlin 0 2 * * *"
        #expect(spec.validate(at: "spec") == [])
    }

    @Test("spec.verification: its schedule and time zone are checked as the schedule's are, with their own paths and reason; its zone defaults to the schedule's")
    func verificationSchedule() throws {
        var spec = try seedSchedule().spec
        spec.verification = VerificationSchedule(schedule: "0 4 * * *")
        #expect(spec.validate(at: "spec") == [])
        spec.verification = VerificationSchedule(schedule: "61 4 * * *")
        let bad = spec.validate(at: "spec")
        #expect(bad.map(\.path) == ["spec.verification.schedule"] && bad.first?.reason == .invalidVerificationSchedule, "\(bad)")
        spec.verification = VerificationSchedule(schedule: "0 4 * * *", timeZone: "Mars/Olympus")
        #expect(spec.validate(at: "spec").map(\.path) == ["spec.verification.timeZone"])
        spec.verification = VerificationSchedule(schedule: "0 0 30 2 *")
        #expect(spec.validate(at: "spec").map(\.description) == ["spec.verification.schedule: \"0 0 30 2 *\" never runs (no date matches it)"])
        spec.verification = VerificationSchedule(schedule: " ")
        #expect(spec.validate(at: "spec").map(\.description) == ["spec.verification.schedule: required"])
        // The schedule's zone by default; a CRON_TZ= prefix of its own wins.
        spec.timeZone = "Europe/Berlin"
        spec.verification = VerificationSchedule(schedule: "0 4 * * *")
        #expect(try spec.verification!.cronSchedule(defaultTimeZone: spec.timeZone).timeZone.identifier == "Europe/Berlin")
        spec.verification = VerificationSchedule(schedule: "CRON_TZ=Asia/Tokyo 0 4 * * *")
        #expect(spec.validate(at: "spec") == [])
        #expect(try spec.verification!.cronSchedule(defaultTimeZone: spec.timeZone).timeZone.identifier == "Asia/Tokyo")
    }

    @Test("serverSideEncryption and storageClass: AES256 or aws:kms (a key only with aws:kms) or SSE-C's key, a storage class as a token; each problem names its field")
    func writeSettings() throws {
        var spec = try seedSchedule().spec.backupTemplate.spec
        spec.backupStorage.s3.serverSideEncryption = ServerSideEncryption(type: .kms, kmsKeyID: "arn:aws:kms:eu-central-1:111122223333:key/1234abcd")
        spec.backupStorage.s3.storageClass = "GLACIER_IR"
        #expect(spec.validate(at: "spec") == [])
        spec.backupStorage.s3.serverSideEncryption = ServerSideEncryption(type: .aes256)
        #expect(spec.validate(at: "spec") == [])
        spec.backupStorage.s3.serverSideEncryption = ServerSideEncryption(customerKeySecretRef: SecretKeySelector(name: "sse-c", key: "key"))
        #expect(spec.validate(at: "spec") == [])
        let cases: [(ServerSideEncryption?, String?, String)] = [
            (ServerSideEncryption(type: .unknown("aws:kms:dsse")), nil, "spec.backupStorage.s3.serverSideEncryption.type: unsupported value \"aws:kms:dsse\"; supported: AES256, aws:kms"),
            (ServerSideEncryption(type: .aes256, kmsKeyID: "k"), nil, "spec.backupStorage.s3.serverSideEncryption.kmsKeyID: goes with type aws:kms only"),
            (ServerSideEncryption(type: .kms, kmsKeyID: "a key"), nil, "spec.backupStorage.s3.serverSideEncryption.kmsKeyID: must be a KMS key ID, ARN or alias: 1 to 2048 printable characters without spaces"),
            (nil, "standard", "spec.backupStorage.s3.storageClass: \"standard\" is not a storage class: upper-case letters, digits and _ (STANDARD, STANDARD_IA, GLACIER_IR, ...)"),
            (nil, "", "spec.backupStorage.s3.storageClass: \"\" is not a storage class: upper-case letters, digits and _ (STANDARD, STANDARD_IA, GLACIER_IR, ...)"),
            (ServerSideEncryption(), nil, "spec.backupStorage.s3.serverSideEncryption.type: required (AES256 or aws:kms), unless customerKeySecretRef is set"),
            (ServerSideEncryption(type: .aes256, customerKeySecretRef: SecretKeySelector(name: "sse-c", key: "key")), nil,
             "spec.backupStorage.s3.serverSideEncryption.customerKeySecretRef: is SSE-C, instead of type (SSE-S3 or SSE-KMS): set one of the two"),
            (ServerSideEncryption(customerKeySecretRef: SecretKeySelector(name: "sse-c", key: "a key")), nil,
             "spec.backupStorage.s3.serverSideEncryption.customerKeySecretRef.key: \"a key\" is not a valid Secret key: use letters, digits, '-', '_' and '.'"),
        ]
        for (sse, storageClass, message) in cases {
            spec.backupStorage.s3.serverSideEncryption = sse
            spec.backupStorage.s3.storageClass = storageClass
            #expect(spec.validate(at: "spec").map(\.description) == [message])
        }
    }

    @Test("objectLock: GOVERNANCE or COMPLIANCE, both fields required, 1 to 36500 days; each problem names its field")
    func objectLock() throws {
        var spec = try seedSchedule().spec.backupTemplate.spec
        spec.backupStorage.s3.objectLock = ObjectLockSettings(mode: .compliance, retainDays: 36_500)
        #expect(spec.validate(at: "spec") == [])
        spec.backupStorage.s3.objectLock = ObjectLockSettings(mode: .governance, retainDays: 1)
        #expect(spec.validate(at: "spec") == [])
        let field = "spec.backupStorage.s3.objectLock"
        for (lock, message) in [
            (ObjectLockSettings(retainDays: 3), "\(field).mode: required: GOVERNANCE or COMPLIANCE"),
            (ObjectLockSettings(mode: .unknown("LEGAL_HOLD"), retainDays: 3), "\(field).mode: unsupported value \"LEGAL_HOLD\"; supported: GOVERNANCE, COMPLIANCE"),
            (ObjectLockSettings(mode: .compliance), "\(field).retainDays: required: the days each object stays locked"),
            (ObjectLockSettings(mode: .compliance, retainDays: 0), "\(field).retainDays: must be between 1 and 36500 days, not 0"),
            (ObjectLockSettings(mode: .governance, retainDays: 36_501), "\(field).retainDays: must be between 1 and 36500 days, not 36501"),
        ] {
            spec.backupStorage.s3.objectLock = lock
            #expect(spec.validate(at: "spec").map(\.description) == [message])
        }
    }

    @Test("a schedule that can never run is an error, not a silent gap")
    func neverRuns() throws {
        var spec = try seedSchedule().spec
        spec.schedule = "0 0 30 2 *"
        #expect(spec.validate(at: "spec").map(\.description) == ["spec.schedule: \"0 0 30 2 *\" never runs (no date matches it)"])
    }

    @Test("encryption needs at least one recipient; a standalone backup validates its spec")
    func encryptionAndBackup() throws {
        var spec = try seedSchedule().spec.backupTemplate.spec
        spec.backupStorage.encryption = Encryption(age: AgeEncryption())
        #expect(spec.validate(at: "spec").map(\.description) == ["spec.backupStorage.encryption.age: set recipients, recipientsSecretRef, or both"])
        spec.backupStorage.encryption = Encryption(age: nil)
        #expect(spec.validate(at: "spec").map(\.description) == ["spec.backupStorage.encryption.age: required when encryption is set"])
        spec.backupStorage.encryption = Encryption(age: AgeEncryption(recipientsSecretRef: SecretKeySelector(name: "r", key: "k")))
        #expect(TalosEtcdBackup(metadata: ObjectMeta(name: "b"), spec: spec).validate() == [])
    }

    @Test("each recipient is parsed as age parses it (checksum, case, length), and a bad one is named by its index")
    func recipients() throws {
        var spec = try seedSchedule().spec.backupTemplate.spec
        let good = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
        // One character changed: still lower-case bech32 of the right length, but the checksum fails.
        let badChecksum = String(good.dropLast()) + "q"
        spec.backupStorage.encryption = Encryption(age: AgeEncryption(recipients: [good, badChecksum, good.uppercased(), "ssh-ed25519 AAAA"]))
        let errors = spec.validate(at: "spec")
        #expect(errors.map(\.path) == (1...3).map { "spec.backupStorage.encryption.age.recipients[\($0)]" })
        #expect(errors.allSatisfy { $0.message.contains("age1... recipient") }, "\(errors)")
        spec.backupStorage.encryption = Encryption(age: AgeEncryption(recipients: [good]))
        #expect(spec.validate(at: "spec") == [])
    }

    @Test("63 characters is the longest schedule name")
    func nameLength() throws {
        var schedule = try seedSchedule()
        schedule.metadata.name = String(repeating: "a", count: 63)
        #expect(schedule.validate() == [])
    }

    func seedSchedule() throws -> TalosEtcdBackupSchedule {
        let json = try documents(of: "TalosEtcdBackupSchedule", file: "examples/daily-backup-schedule.yaml")[0]
        return try StrictDecoding.decode(TalosEtcdBackupSchedule.self, from: jsonData(json))
    }
}

@Suite("Plain HTTP endpoints")
struct PlainHTTPValidationTests {
    @Test("an http:// endpoint is refused unless insecureHTTP is true; https needs nothing")
    func optIn() {
        var spec = TalosEtcdBackupSpec(
            talosControlPlaneRef: .init(name: "cp"),
            backupStorage: BackupStorage(s3: S3Storage(bucket: "b-1", region: "us-east-1", accessKeyID: .init(name: "a", key: "k"),
                                                       secretAccessKey: .init(name: "a", key: "s"), endpoint: "HTTP://minio.internal:9000")))
        #expect(spec.validate(at: "spec").map(\.description) == [
            "spec.backupStorage.s3.endpoint: \"HTTP://minio.internal:9000\" is plain HTTP: the snapshot (every Secret of the cluster, unless encrypted) would travel in clear; use https, or set spec.backupStorage.s3.insecureHTTP: true",
        ])
        spec.backupStorage.s3.insecureHTTP = false
        #expect(spec.validate(at: "spec").count == 1)
        spec.backupStorage.s3.insecureHTTP = true
        #expect(spec.validate(at: "spec").isEmpty)
        spec.backupStorage.s3.insecureHTTP = nil
        spec.backupStorage.s3.endpoint = "https://minio.internal:9000"
        #expect(spec.validate(at: "spec").isEmpty)
    }
}

@Suite("Defaults")
struct DefaultsTests {
    @Test("applied in one place, matching docs/design.md")
    func defaults() throws {
        let s3 = S3Storage(bucket: "b-1", region: "r", accessKeyID: .init(name: "a", key: "k"), secretAccessKey: .init(name: "a", key: "s"))
        let spec = TalosEtcdBackupScheduleSpec(
            schedule: "0 2 * * *",
            backupTemplate: BackupTemplate(spec: TalosEtcdBackupSpec(
                talosControlPlaneRef: .init(name: "cp"), backupStorage: BackupStorage(s3: s3, compression: Compression(type: .zstd)))))
        let defaulted = spec.withDefaults()
        #expect(defaulted.retention == 5)
        #expect(defaulted.paused == false)
        #expect(defaulted.concurrencyPolicy == .forbid)
        #expect(defaulted.timeZone == nil)  // unset means UTC; see Defaults
        #expect(defaulted.effectiveConcurrencyPolicy == .forbid)
        let storage = defaulted.backupTemplate.spec.backupStorage
        #expect(storage.s3.prefix == "talos-etcd-backups")
        #expect(storage.s3.insecureSkipTLSVerify == false)
        #expect(storage.s3.forcePathStyle == false)
        #expect(storage.compression?.level == 3)
        #expect(storage.encryption == nil)

        var withEndpoint = spec.backupTemplate.spec
        withEndpoint.backupStorage.s3.endpoint = "https://minio.example.com"
        #expect(withEndpoint.withDefaults().backupStorage.s3.forcePathStyle == true)
        withEndpoint.backupStorage.s3.forcePathStyle = false
        #expect(withEndpoint.withDefaults().backupStorage.s3.forcePathStyle == false)  // explicit wins

        var explicit = spec
        explicit.retention = 9
        explicit.paused = true
        explicit.concurrencyPolicy = .allow
        #expect(explicit.withDefaults().retention == 9)
        #expect(explicit.withDefaults().paused == true)
        #expect(explicit.withDefaults().effectiveConcurrencyPolicy == .allow)

        // Issue 15: 3 failed backups kept, Delete; retention 5 only without a retentionPolicy.
        #expect(defaulted.failedBackupsHistoryLimit == 3)
        #expect(defaulted.backupTemplate.spec.deletionPolicy == .delete)
        var tiered = spec
        tiered.retentionPolicy = RetentionPolicy(keepDaily: 7)
        #expect(tiered.withDefaults().retention == nil)
        #expect(tiered.validate(at: "spec").isEmpty)
    }
}

@Suite("Retention and deletion policies")
struct RetentionPolicyValidationTests {
    @Test("retentionPolicy: not with retention, no negative tier, at least one tier above 0; deletionPolicy: Delete or Retain")
    func problems() throws {
        let s3 = S3Storage(bucket: "b-1", region: "r", accessKeyID: .init(name: "a", key: "k"), secretAccessKey: .init(name: "a", key: "s"))
        var spec = TalosEtcdBackupScheduleSpec(
            schedule: "0 2 * * *",
            backupTemplate: BackupTemplate(spec: TalosEtcdBackupSpec(talosControlPlaneRef: .init(name: "cp"), backupStorage: BackupStorage(s3: s3))))
        spec.retention = 3
        spec.retentionPolicy = RetentionPolicy(keepLast: 0, keepWeekly: -1)
        spec.backupTemplate.spec.deletionPolicy = .unknown("Orphan")
        #expect(spec.validate(at: "spec").map(\.description) == [
            "spec.retentionPolicy: must not be set together with spec.retention (use retentionPolicy.keepLast)",
            "spec.retentionPolicy.keepWeekly: must be 0 or more, not -1",
            "spec.retentionPolicy: keeps nothing: set at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly above 0",
            "spec.backupTemplate.spec.deletionPolicy: unsupported value \"Orphan\"; supported: Delete, Retain",
        ])
        spec.retention = nil
        spec.retentionPolicy = RetentionPolicy(keepYearly: 1)
        spec.backupTemplate.spec.deletionPolicy = .retain
        #expect(spec.validate(at: "spec").isEmpty)
    }
}

@Suite("Each problem carries the condition reason it gives")
struct FieldErrorReasonTests {
    @Test("a time zone, a cron expression and a name have reasons of their own; everything else is InvalidSpec")
    func reasons() throws {
        let s3 = S3Storage(bucket: "B", region: "r", accessKeyID: .init(name: "a", key: "k"), secretAccessKey: .init(name: "a", key: "s"))
        var schedule = TalosEtcdBackupSchedule(
            metadata: ObjectMeta(name: String(repeating: "n", count: 64), namespace: "default"),
            spec: TalosEtcdBackupScheduleSpec(schedule: "0 2 * * *",
                                              backupTemplate: BackupTemplate(spec: TalosEtcdBackupSpec(talosControlPlaneRef: .init(name: "cp"), backupStorage: BackupStorage(s3: s3)))))
        schedule.spec.timeZone = "Mars/Olympus"
        let reasons: [String: ConditionReason] = Dictionary(schedule.validate().map { ($0.path, $0.reason) }, uniquingKeysWith: { first, _ in first })
        #expect(reasons["metadata.name"] == .invalidName)
        #expect(reasons["spec.timeZone"] == .invalidTimeZone, "\(reasons)")
        #expect(reasons["spec.backupTemplate.spec.backupStorage.s3.bucket"] == .invalidSpec)
        schedule.spec.timeZone = nil
        schedule.spec.schedule = "61 * * * *"
        #expect(schedule.validate().first { $0.path == "spec.schedule" }?.reason == .invalidSchedule)
        schedule.spec.schedule = "CRON_TZ=Mars/Olympus 0 2 * * *"
        #expect(schedule.validate().first { $0.path == "spec.schedule" }?.reason == .invalidSchedule, "a zone in the expression is the expression's problem")
    }
}

@Suite("Enumerated fields keep a value they do not know")
struct OpenEnumTests {
    @Test("an unknown concurrencyPolicy, deletionPolicy or compression type decodes as .unknown, encodes back as it came, and validation names the field")
    func unknownValues() throws {
        let json = """
            {"schedule": "0 2 * * *", "concurrencyPolicy": "Sometimes", "backupTemplate": {"spec": {
              "talosControlPlaneRef": {"name": "cp"}, "deletionPolicy": "Orphan",
              "backupStorage": {"s3": {"bucket": "b-1", "region": "r", "accessKeyID": {"name": "a", "key": "k"},
                                       "secretAccessKey": {"name": "a", "key": "s"}}, "compression": {"type": "lz4"}}}}}
            """
        let spec = try JSONDecoder().decode(TalosEtcdBackupScheduleSpec.self, from: Data(json.utf8))
        #expect(spec.concurrencyPolicy == .unknown("Sometimes"))
        #expect(spec.backupTemplate.spec.deletionPolicy == .unknown("Orphan"))
        #expect(spec.backupTemplate.spec.backupStorage.compression?.type == .unknown("lz4"))
        #expect(spec.withDefaults().effectiveConcurrencyPolicy == .unknown("Sometimes"), "defaults never replace a value that is set")

        let encoded = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(spec)) as? [String: Any]
        #expect(encoded?["concurrencyPolicy"] as? String == "Sometimes")
        let template = (encoded?["backupTemplate"] as? [String: Any])?["spec"] as? [String: Any]
        #expect(template?["deletionPolicy"] as? String == "Orphan")
        #expect(((template?["backupStorage"] as? [String: Any])?["compression"] as? [String: Any])?["type"] as? String == "lz4")

        #expect(spec.validate(at: "spec").map(\.description) == [
            "spec.concurrencyPolicy: unsupported value \"Sometimes\"; supported: Forbid, Allow",
            "spec.backupTemplate.spec.deletionPolicy: unsupported value \"Orphan\"; supported: Delete, Retain",
            "spec.backupTemplate.spec.backupStorage.compression.type: unsupported value \"lz4\"; supported: zstd",
        ])
        // Known values are the cases, whatever the spelling of the code.
        #expect(ConcurrencyPolicy(rawValue: "Allow") == .allow && DeletionPolicy(rawValue: "Retain") == .retain)
        #expect(Compression.Algorithm(rawValue: "zstd") == .zstd && Compression.Algorithm(rawValue: "") == .unknown(""))
        let missingType = try JSONDecoder().decode(Compression.self, from: Data("{}".utf8))
        #expect(missingType.type.unsupportedValue(at: "compression.type", required: true)?.description == "compression.type: required")
        #expect(DeletionPolicy(rawValue: "").unsupportedValue(at: "deletionPolicy")?.description == "deletionPolicy: unsupported value \"\"; supported: Delete, Retain",
                "an optional field set to \"\" is not missing")
    }
}

@Suite("Conditions follow meta.SetStatusCondition")
struct ConditionTests {
    @Test("lastTransitionTime moves only when the status changes")
    func transitions() {
        let t0 = Date(timeIntervalSince1970: 1_000), t1 = Date(timeIntervalSince1970: 2_000), t2 = Date(timeIntervalSince1970: 3_000)
        var conditions: [Condition] = []
        var changed = conditions.set(type: "Ready", status: .false, reason: ConditionReason.paused.rawValue, message: "paused", observedGeneration: 1, now: t0)
        #expect(changed)
        #expect(conditions[type: ConditionType.ready]?.lastTransitionTime == KubeTime(t0))

        // Same status, new reason and message: updated, transition time kept.
        changed = conditions.set(type: "Ready", status: .false, reason: ConditionReason.invalidSchedule.rawValue, message: "bad", observedGeneration: 2, now: t1)
        #expect(changed)
        #expect(conditions[type: ConditionType.ready] == Condition(
            type: "Ready", status: .false, reason: ConditionReason.invalidSchedule.rawValue, message: "bad", lastTransitionTime: KubeTime(t0), observedGeneration: 2))

        // Nothing new: no change reported.
        changed = conditions.set(type: "Ready", status: .false, reason: ConditionReason.invalidSchedule.rawValue, message: "bad", observedGeneration: 2, now: t2)
        #expect(!changed)

        // Status flips: transition time moves.
        changed = conditions.set(type: "Ready", status: .true, reason: ConditionReason.scheduled.rawValue, message: "ok", observedGeneration: 2, now: t2)
        #expect(changed)
        #expect(conditions[type: ConditionType.ready]?.lastTransitionTime == KubeTime(t2))
        #expect(conditions.isTrue("Ready"))

        conditions.set(type: "Failed", status: .true, reason: "X", message: "y", now: t2)
        #expect(conditions.map(\.type) == ["Ready", "Failed"])
        let removed = conditions.remove(type: "Failed")
        let removedAgain = conditions.remove(type: "Failed")
        #expect(removed)
        #expect(!removedAgain)
        #expect(conditions.map(\.type) == ["Ready"])
    }
}

@Suite("The wire spelling of the vocabulary")
struct VocabularyTests {
    @Test("condition types, reasons and Event actions are spelled as users' alerts and scripts know them")
    func spellings() {
        #expect(ConditionType.allCases.map(\.rawValue) == ["Ready", "Failed", "Progressing", "Verified"])
        #expect(ConditionReason.allCases.map(\.rawValue) == [
            "Running", "Retrying", "Succeeded", "Adopted", "Started",
            "InvalidSpec", "TalosConfigNotFound", "TalosConfigInvalid", "CredentialsNotFound", "EncryptionConfigNotFound",
            "EncryptionConfigInvalid", "StateSecretNotFound", "StateSecretInvalid", "TalosUnreachable", "TalosError", "SnapshotCorrupt", "SnapshotInvalid", "SnapshotStalled",
            "AttemptTimedOut", "EndpointNotAllowed", "UploadFailed", "ObjectExists", "ObjectReplaced", "AttemptsExhausted",
            "InternalError",
            "Deleted", "DeleteFailed", "ObjectLeftInStore", "ObjectLocked", "ObjectRetained",
            "VerificationPassed", "ObjectMissing", "ObjectChanged", "VerificationError", "InvalidVerificationSchedule",
            "Scheduled", "Paused", "InvalidSchedule", "InvalidTimeZone", "InvalidName", "BackupCreated", "BackupCreationFailed",
            "BackupPruned", "MissedSchedule",
        ])
        #expect(EventAction.allCases.map(\.rawValue) == ["Backup", "Delete", "Prune", "Schedule", "Validate", "Verify"])
        #expect(VerificationResult.Outcome.allCases.map(\.rawValue) == ["Passed", "Failed", "Error"])
        #expect(DeletionPolicy.allCases.map(\.rawValue) == ["Delete", "Retain"])
        #expect(ConcurrencyPolicy.allCases.map(\.rawValue) == ["Forbid", "Allow"])
        #expect(Compression.Algorithm.allCases.map(\.rawValue) == ["zstd"])
    }
}
