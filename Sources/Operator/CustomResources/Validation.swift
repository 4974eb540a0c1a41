import Age
import Cron
import Foundation
import KubernetesCore
import S3Names

/// One problem with a resource, located by its field path, e.g.
/// `spec.backupTemplate.spec.backupStorage.s3.bucket: required`.
public struct FieldError: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    /// The condition reason this problem gives its resource when it is the most specific one
    /// there (``ConditionReason/invalidSpec`` unless a field has a reason of its own).
    public var reason: ConditionReason

    public init(_ path: String, _ message: String, reason: ConditionReason = .invalidSpec) {
        self.path = path
        self.message = message
        self.reason = reason
    }

    public var description: String { "\(path): \(message)" }
}

/// Limits from Kubernetes and S3 that validation checks against.
public enum ValidationLimits {
    /// A label value's maximum length; schedule names become label values on their backups.
    public static let labelValueLength = 63
    public static let zstdLevels = 1...19
    /// S3 Object Lock retention in days: a day to a hundred years.
    public static let objectLockDays = 1...36_500
}

extension TalosEtcdBackupSchedule {
    /// Every problem with this schedule, each with its field path; empty when it is valid.
    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        if let name = metadata.name, name.count > ValidationLimits.labelValueLength {
            errors.append(FieldError(
                "metadata.name",
                "\"\(name)\" is \(name.count) characters; a schedule name may have at most \(ValidationLimits.labelValueLength) because it becomes the value of label \(Self.backupScheduleLabel) on its backups",
                reason: .invalidName))
        }
        return errors + spec.validate(at: "spec")
    }
}

extension TalosEtcdBackup {
    /// Every problem with this backup, each with its field path; empty when it is valid.
    public func validate() -> [FieldError] {
        spec.validate(at: "spec")
    }
}

extension TalosEtcdBackupScheduleSpec {
    /// Every problem with this spec, with paths under `path`.
    public func validate(at path: String) -> [FieldError] {
        var errors: [FieldError] = []
        if schedule.trimmingCharacters(in: .whitespaces).isEmpty {
            errors.append(FieldError("\(path).schedule", "required", reason: .invalidSchedule))
        } else {
            do {
                let cron = try CronSchedule(schedule, timeZone: timeZone)
                if !cron.expression.canEverMatch {
                    errors.append(FieldError("\(path).schedule", "\"\(schedule)\" never runs (no date matches it)", reason: .invalidSchedule))
                }
            } catch {
                let (field, reason) = Self.field(of: error, under: path, timeZone: timeZone)
                errors.append(FieldError(field, error.description, reason: reason))
            }
        }
        if let retention, retention < 1 {
            errors.append(FieldError("\(path).retention", "must be at least 1, not \(retention)"))
        }
        if let policy = retentionPolicy {
            if retention != nil {
                errors.append(FieldError("\(path).retentionPolicy", "must not be set together with \(path).retention (use retentionPolicy.keepLast)"))
            }
            for (field, count) in policy.tiers {
                if let count, count < 0 {
                    errors.append(FieldError("\(path).retentionPolicy.\(field)", "must be 0 or more, not \(count)"))
                }
            }
            if !policy.tiers.contains(where: { ($0.count ?? 0) > 0 }) {
                errors.append(FieldError("\(path).retentionPolicy", "keeps nothing: set at least one of \(policy.tiers.map(\.field).joined(separator: ", ")) above 0"))
            }
        }
        if let startingDeadlineSeconds, startingDeadlineSeconds < 0 {
            errors.append(FieldError("\(path).startingDeadlineSeconds", "must be 0 or more, not \(startingDeadlineSeconds)"))
        }
        if let failedBackupsHistoryLimit, failedBackupsHistoryLimit < 0 {
            errors.append(FieldError("\(path).failedBackupsHistoryLimit", "must be 0 or more, not \(failedBackupsHistoryLimit)"))
        }
        if let problem = concurrencyPolicy?.unsupportedValue(at: "\(path).concurrencyPolicy") { errors.append(problem) }
        if let verification {
            // The schedule's own zone, also when a CRON_TZ= prefix gives it.
            let zone = (try? CronSchedule(schedule, timeZone: timeZone))?.timeZone.identifier ?? timeZone
            errors += verification.validate(at: "\(path).verification", defaultTimeZone: zone)
        }
        return errors + backupTemplate.spec.validate(at: "\(path).backupTemplate.spec")
    }

    /// Which field a cron error belongs to, and the reason it gives: a bad zone from
    /// `timeZone` is that field's problem, a bad zone from a `CRON_TZ=` prefix is the schedule's.
    static func field(of error: CronError, under path: String, timeZone: String?) -> (path: String, reason: ConditionReason) {
        switch error {
        case .invalidTimeZone(let zone) where zone == timeZone: ("\(path).timeZone", .invalidTimeZone)
        case .conflictingTimeZones: ("\(path).timeZone", .invalidTimeZone)
        default: ("\(path).schedule", .invalidSchedule)
        }
    }
}

extension VerificationSchedule {
    /// Every problem with it, with paths under `path`; `defaultTimeZone` is the schedule's.
    func validate(at path: String, defaultTimeZone: String?) -> [FieldError] {
        if schedule.trimmingCharacters(in: .whitespaces).isEmpty {
            return [FieldError("\(path).schedule", "required", reason: .invalidVerificationSchedule)]
        }
        do {
            let cron = try cronSchedule(defaultTimeZone: defaultTimeZone)
            if !cron.expression.canEverMatch {
                return [FieldError("\(path).schedule", "\"\(schedule)\" never runs (no date matches it)", reason: .invalidVerificationSchedule)]
            }
        } catch {
            let field = TalosEtcdBackupScheduleSpec.field(of: error, under: path, timeZone: timeZone).path
            return [FieldError(field, error.description, reason: .invalidVerificationSchedule)]
        }
        return []
    }

    /// The cron schedule of verification runs, in `timeZone`, else the schedule's zone (unless
    /// the expression names its own with `CRON_TZ=`).
    public func cronSchedule(defaultTimeZone: String?) throws(CronError) -> CronSchedule {
        let ownZone = schedule.hasPrefix("CRON_TZ=") || schedule.hasPrefix("TZ=")
        return try CronSchedule(schedule, timeZone: timeZone ?? (ownZone ? nil : defaultTimeZone))
    }
}

extension TalosEtcdBackupSpec {
    /// Every problem with this spec, with paths under `path`.
    public func validate(at path: String) -> [FieldError] {
        var errors: [FieldError] = []
        errors += Validate.objectName(talosControlPlaneRef.name, at: "\(path).talosControlPlaneRef.name")
        if let problem = deletionPolicy?.unsupportedValue(at: "\(path).deletionPolicy") { errors.append(problem) }
        let storage = "\(path).backupStorage"
        let s3 = backupStorage.s3
        errors += Validate.bucketName(s3.bucket, at: "\(storage).s3.bucket")
        errors += Validate.region(s3.region, at: "\(storage).s3.region")
        switch (s3.accessKeyID, s3.secretAccessKey) {
        case let (keyID?, secret?):
            errors += Validate.secretKeySelector(keyID, at: "\(storage).s3.accessKeyID")
            errors += Validate.secretKeySelector(secret, at: "\(storage).s3.secretAccessKey")
        case (_?, nil):
            errors.append(FieldError("\(storage).s3.secretAccessKey", "required with accessKeyID"))
        case (nil, _?):
            errors.append(FieldError("\(storage).s3.accessKeyID", "required with secretAccessKey"))
        case (nil, nil):
            break
        }
        if let token = s3.sessionToken {
            if s3.accessKeyID == nil {
                errors.append(FieldError("\(storage).s3.sessionToken", "goes with accessKeyID and secretAccessKey only"))
            } else {
                errors += Validate.secretKeySelector(token, at: "\(storage).s3.sessionToken")
            }
        }
        if let role = s3.roleARN, !Validate.isRoleARN(role) {
            errors.append(FieldError("\(storage).s3.roleARN",
                                     "\"\(role.prefix(200))\" is not an IAM role ARN: arn:<partition>:iam::<account>:role/<name>, at most 2048 characters"))
        }
        if let endpoint = s3.endpoint {
            errors += Validate.endpoint(endpoint, at: "\(storage).s3.endpoint")
            if endpoint.lowercased().hasPrefix("http://"), s3.insecureHTTP != true {
                errors.append(FieldError(
                    "\(storage).s3.endpoint",
                    "\"\(endpoint.prefix(200))\" is plain HTTP: the snapshot (every Secret of the cluster, unless encrypted) would travel in clear; use https, or set \(storage).s3.insecureHTTP: true"))
            }
        }
        if let prefix = s3.prefix { errors += Validate.prefix(prefix, at: "\(storage).s3.prefix") }
        if let ca = s3.caBundleSecretRef { errors += Validate.secretKeySelector(ca, at: "\(storage).s3.caBundleSecretRef") }
        if let sse = s3.serverSideEncryption {
            let field = "\(storage).s3.serverSideEncryption"
            switch (sse.type, sse.customerKeySecretRef) {
            case (let type?, nil):
                if let problem = type.unsupportedValue(at: "\(field).type", required: true) { errors.append(problem) }
            case (nil, let key?):
                errors += Validate.secretKeySelector(key, at: "\(field).customerKeySecretRef")
            case (_?, _?):
                errors.append(FieldError("\(field).customerKeySecretRef", "is SSE-C, instead of type (SSE-S3 or SSE-KMS): set one of the two"))
            case (nil, nil):
                errors.append(FieldError("\(field).type", "required (AES256 or aws:kms), unless customerKeySecretRef is set"))
            }
            if let key = sse.kmsKeyID {
                if sse.type != .kms {
                    errors.append(FieldError("\(field).kmsKeyID", "goes with type aws:kms only"))
                } else if key.isEmpty || key.utf8.count > 2048 || !key.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) {
                    errors.append(FieldError("\(field).kmsKeyID", "must be a KMS key ID, ARN or alias: 1 to 2048 printable characters without spaces"))
                }
            }
        }
        if let storageClass = s3.storageClass,
           storageClass.isEmpty || storageClass.utf8.count > 64 || !storageClass.utf8.allSatisfy({ (0x41...0x5a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5f }) {
            errors.append(FieldError("\(storage).s3.storageClass",
                                     "\"\(storageClass.prefix(80))\" is not a storage class: upper-case letters, digits and _ (STANDARD, STANDARD_IA, GLACIER_IR, ...)"))
        }
        if let lock = s3.objectLock {
            let field = "\(storage).s3.objectLock"
            if let problem = lock.mode.flatMap({ $0.unsupportedValue(at: "\(field).mode", required: true) }) { errors.append(problem) }
            if lock.mode == nil { errors.append(FieldError("\(field).mode", "required: GOVERNANCE or COMPLIANCE")) }
            if let days = lock.retainDays {
                if !ValidationLimits.objectLockDays.contains(days) {
                    errors.append(FieldError("\(field).retainDays", "must be between \(ValidationLimits.objectLockDays.lowerBound) and \(ValidationLimits.objectLockDays.upperBound) days, not \(days)"))
                }
            } else {
                errors.append(FieldError("\(field).retainDays", "required: the days each object stays locked"))
            }
        }
        if let compression = backupStorage.compression {
            if let problem = compression.type.unsupportedValue(at: "\(storage).compression.type", required: true) { errors.append(problem) }
            if let level = compression.level, !ValidationLimits.zstdLevels.contains(level) {
                errors.append(FieldError(
                    "\(storage).compression.level",
                    "must be between \(ValidationLimits.zstdLevels.lowerBound) and \(ValidationLimits.zstdLevels.upperBound), not \(level)"))
            }
        }
        if let state = backupStorage.stateSecretRef {
            errors += Validate.objectName(state.name, at: "\(storage).stateSecretRef.name")
        }
        if let encryption = backupStorage.encryption {
            errors += Validate.encryption(encryption, at: "\(storage).encryption")
        }
        return errors
    }
}

/// Field-level checks shared by both kinds.
enum Validate {
    /// A DNS-1123 subdomain, the rule for most Kubernetes object names.
    static func objectName(_ name: String, at path: String) -> [FieldError] {
        if name.isEmpty { return [FieldError(path, "required")] }
        if name.count > 253 { return [FieldError(path, "\"\(name)\" is longer than 253 characters")] }
        let valid = name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let first = label.first, let last = label.last else { return false }
            return label.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
                && first != "-" && last != "-"
        }
        return valid ? [] : [FieldError(
            path,
            "\"\(name)\" is not a valid object name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit")]
    }

    /// `arn:<partition>:iam::<account>:role/<path/name>`: the account may be empty (Ceph RGW's
    /// roles have none), the whole at most 2048 printable characters.
    static func isRoleARN(_ text: String) -> Bool {
        guard text.utf8.count <= 2048, text.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { return false }
        let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", !parts[1].isEmpty, parts[2] == "iam", parts[3].isEmpty,
              parts[4].allSatisfy(\.isNumber), parts[5].hasPrefix("role/"), parts[5].count > 5 else { return false }
        return true
    }

    static func secretKeySelector(_ selector: SecretKeySelector, at path: String) -> [FieldError] {
        var errors = objectName(selector.name, at: "\(path).name")
        if selector.key.isEmpty {
            errors.append(FieldError("\(path).key", "required"))
        } else if selector.key.count > 253
            || !selector.key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) })
        {
            errors.append(FieldError(
                "\(path).key", "\"\(selector.key)\" is not a valid Secret key: use letters, digits, '-', '_' and '.'"))
        }
        return errors
    }

    /// S3 bucket naming rules: 3-63 characters of lower-case letters, digits, '.' and '-',
    /// starting and ending with a letter or digit.
    static func bucketName(_ bucket: String, at path: String) -> [FieldError] {
        if bucket.isEmpty { return [FieldError(path, "required")] }
        let allowed = bucket.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "." || $0 == "-" }
        let ends = [bucket.first!, bucket.last!].allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) }
        if (3...63).contains(bucket.count), allowed, ends, !bucket.contains("..") { return [] }
        return [FieldError(
            path,
            "\"\(bucket)\" is not a valid S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit")]
    }

    /// ``S3Names/isValidRegion(_:)``: the region goes into the AWS host name and every signature.
    static func region(_ region: String, at path: String) -> [FieldError] {
        if region.isEmpty { return [FieldError(path, "required")] }
        if S3Names.isValidRegion(region) { return [] }
        return [FieldError(path, "\"\(region.prefix(64))\" is not a region: use \(S3Names.regionRule)")]
    }

    static func endpoint(_ endpoint: String, at path: String) -> [FieldError] {
        guard let url = URLComponents(string: endpoint), let scheme = url.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let host = url.host, !host.isEmpty
        else {
            return [FieldError(path, "\"\(endpoint)\" is not an http(s) URL such as https://minio.example.com")]
        }
        if url.query != nil || url.fragment != nil || url.user != nil {
            return [FieldError(path, "\"\(endpoint)\" must not carry user info, a query or a fragment")]
        }
        return []
    }

    static func prefix(_ prefix: String, at path: String) -> [FieldError] {
        if prefix.isEmpty { return [FieldError(path, "must not be empty; omit it to use \"\(Defaults.s3Prefix)\"")] }
        if prefix.hasPrefix("/") || prefix.hasSuffix("/") || prefix.contains("//") {
            return [FieldError(path, "\"\(prefix)\" must not start or end with '/' or contain '//'")]
        }
        return []
    }

    static func encryption(_ encryption: Encryption, at path: String) -> [FieldError] {
        guard let age = encryption.age else { return [FieldError("\(path).age", "required when encryption is set")] }
        var errors: [FieldError] = []
        let recipients = age.recipients ?? []
        if recipients.isEmpty && age.recipientsSecretRef == nil {
            errors.append(FieldError("\(path).age", "set recipients, recipientsSecretRef, or both"))
        }
        for (index, recipient) in recipients.enumerated() {
            do {
                _ = try AgeRecipient(parsing: recipient)
            } catch AgeError.invalidKey(let problem) {
                errors.append(FieldError("\(path).age.recipients[\(index)]", problem))
            } catch {
                errors.append(FieldError("\(path).age.recipients[\(index)]", "\(error)"))
            }
        }
        if let ref = age.recipientsSecretRef {
            errors += secretKeySelector(ref, at: "\(path).age.recipientsSecretRef")
        }
        return errors
    }
}
