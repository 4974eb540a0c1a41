import KubernetesCore
import Foundation

/// A cron schedule that creates ``TalosEtcdBackup`` objects and prunes old successful ones.
public struct TalosEtcdBackupSchedule: Codable, Sendable, Equatable {
    public static let kind = "TalosEtcdBackupSchedule"
    public static let plural = "talosetcdbackupschedules"
    /// Label carried by every backup a schedule creates; its value is the schedule's name.
    public static let backupScheduleLabel = "talos.alperen.cloud/backup-schedule"
    /// Annotation on each backup a schedule creates: the run's scheduled time (RFC 3339), by
    /// which tiered retention judges periods (not the completion time).
    public static let scheduledTimeAnnotation = "talos.alperen.cloud/scheduled-time"
    /// Annotation on a schedule asking for one backup now; each new value makes one backup.
    public static let backupNowAnnotation = "talos.alperen.cloud/backup-now"
    /// Annotation on a backup made on demand: the `backup-now` value it answers.
    public static let backupNowRequestAnnotation = "talos.alperen.cloud/backup-now-request"

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    @RequiredField public var spec: TalosEtcdBackupScheduleSpec
    public var status: TalosEtcdBackupScheduleStatus?

    public init(metadata: ObjectMeta, spec: TalosEtcdBackupScheduleSpec, status: TalosEtcdBackupScheduleStatus? = nil) {
        self.apiVersion = CustomResourcesGroup.apiVersion
        self.kind = Self.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

extension TalosEtcdBackupSchedule {
    /// A backup of this schedule: named `name`, its spec the template's, labelled with the
    /// schedule and owned by it (a controller reference, as a CronJob owns its Jobs). The one
    /// shape of every backup a schedule has: scheduled, on demand, adopted.
    public func backup(named name: String, annotations: [String: String]) -> TalosEtcdBackup {
        let scheduleName = metadata.name ?? ""
        return TalosEtcdBackup(
            metadata: ObjectMeta(
                name: name, namespace: metadata.namespace,
                labels: [Self.backupScheduleLabel: scheduleName], annotations: annotations,
                ownerReferences: [OwnerReference(
                    apiVersion: Self.resourceType.apiVersion, kind: Self.resourceType.kind,
                    name: scheduleName, uid: metadata.uid ?? "", controller: true, blockOwnerDeletion: true)]),
            spec: spec.backupTemplate.spec)
    }

    /// The run time a schedule's backup name carries: the Unix seconds it ends in
    /// (`<schedule>-<seconds>`, `<schedule>-manual-<seconds>`); nil for other names.
    public static func runTime(ofBackupNamed name: String) -> Date? {
        guard let suffix = name.split(separator: "-").last, let seconds = Int64(suffix), seconds > 0 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}

/// When to take backups, what each one is, and how many to keep.
public struct TalosEtcdBackupScheduleSpec: Codable, Sendable, Equatable, EmptyRepresentable {
    @RequiredField public var schedule: String
    @RequiredField public var backupTemplate: BackupTemplate
    public var retention: Int?
    public var paused: Bool?
    public var timeZone: String?
    public var startingDeadlineSeconds: Int64?
    public var concurrencyPolicy: ConcurrencyPolicy?
    public var failedBackupsHistoryLimit: Int?
    /// Tiered retention (restic's `forget`); exclusive with `retention`.
    public var retentionPolicy: RetentionPolicy?
    /// When to check the retained backups' stored objects again; unset: never.
    public var verification: VerificationSchedule?

    public init(
        schedule: String, backupTemplate: BackupTemplate, retention: Int? = nil, paused: Bool? = nil,
        timeZone: String? = nil, startingDeadlineSeconds: Int64? = nil, concurrencyPolicy: ConcurrencyPolicy? = nil,
        failedBackupsHistoryLimit: Int? = nil, retentionPolicy: RetentionPolicy? = nil
    ) {
        self.schedule = schedule
        self.backupTemplate = backupTemplate
        self.retention = retention
        self.paused = paused
        self.timeZone = timeZone
        self.startingDeadlineSeconds = startingDeadlineSeconds
        self.concurrencyPolicy = concurrencyPolicy
        self.failedBackupsHistoryLimit = failedBackupsHistoryLimit
        self.retentionPolicy = retentionPolicy
    }

    public static var empty: Self { Self(schedule: "", backupTemplate: .empty) }
}

/// The spec copied into every backup the schedule creates.
public struct BackupTemplate: Codable, Sendable, Equatable, EmptyRepresentable {
    @RequiredField public var spec: TalosEtcdBackupSpec

    public init(spec: TalosEtcdBackupSpec) { self.spec = spec }

    public static var empty: Self { Self(spec: .empty) }
}

/// Whether a run may start while an earlier backup of the same schedule is still active.
public enum ConcurrencyPolicy: OpenEnum {
    /// Hold the run while a backup of this schedule is neither succeeded nor failed, then start it
    /// when that backup ends (unless `startingDeadlineSeconds` has passed), as a CronJob does.
    case forbid
    /// Start the run regardless.
    case allow
    /// A value this version does not support: validation refuses it.
    case unknown(String)

    public static let allCases: [Self] = [.forbid, .allow]

    public var rawValue: String {
        switch self {
        case .forbid: "Forbid"
        case .allow: "Allow"
        case .unknown(let value): value
        }
    }
}

/// Tiered retention with restic `forget` semantics: for each tier, successful backups are
/// walked newest first (by scheduled time) and the newest backup of each of the N most recent
/// periods (hours, days, ISO weeks, months, years in the schedule's time zone) that have one is
/// kept; `keepLast` keeps the newest N. A backup is kept when any tier keeps it. 0 or unset
/// turns a tier off.
public struct RetentionPolicy: Codable, Sendable, Equatable {
    public var keepLast: Int?
    public var keepHourly: Int?
    public var keepDaily: Int?
    public var keepWeekly: Int?
    public var keepMonthly: Int?
    public var keepYearly: Int?

    public init(keepLast: Int? = nil, keepHourly: Int? = nil, keepDaily: Int? = nil, keepWeekly: Int? = nil,
                keepMonthly: Int? = nil, keepYearly: Int? = nil) {
        self.keepLast = keepLast
        self.keepHourly = keepHourly
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepYearly = keepYearly
    }

    /// The tiers, in restic's order, with their field names and counts.
    public var tiers: [(field: String, count: Int?)] {
        [("keepLast", keepLast), ("keepHourly", keepHourly), ("keepDaily", keepDaily),
         ("keepWeekly", keepWeekly), ("keepMonthly", keepMonthly), ("keepYearly", keepYearly)]
    }
}

/// When a schedule's retained backups are read back and checked against their records (sizes,
/// SHA-256, and for plain snapshots etcd's trailer and the bbolt structure): a backup that was
/// good when taken is no proof that its object still exists unchanged.
public struct VerificationSchedule: Codable, Sendable, Equatable {
    /// A cron expression, as `schedule` takes them.
    @RequiredField public var schedule: String
    /// The zone `schedule` is read in; unset: the schedule's `timeZone`.
    public var timeZone: String?

    public init(schedule: String, timeZone: String? = nil) {
        self.schedule = schedule
        self.timeZone = timeZone
    }
}

/// How the retained backups' latest verifications came out.
public struct VerificationCounts: Codable, Sendable, Equatable {
    /// Retained successful backups whose latest verification passed.
    public var passed: Int?
    /// ... failed (the object is missing, changed or not a sound snapshot).
    public var failed: Int?
    /// ... not verified since the last verification run was due (taken since, or not reached yet).
    public var pending: Int?

    public init(passed: Int? = nil, failed: Int? = nil, pending: Int? = nil) {
        self.passed = passed
        self.failed = failed
        self.pending = pending
    }
}

/// How many successful backups each retention tier holds now (a backup may count in several).
public struct RetainedBackups: Codable, Sendable, Equatable {
    public var last: Int?
    public var hourly: Int?
    public var daily: Int?
    public var weekly: Int?
    public var monthly: Int?
    public var yearly: Int?
    /// Successful backups kept in all.
    public var total: Int?

    public init(last: Int? = nil, hourly: Int? = nil, daily: Int? = nil, weekly: Int? = nil, monthly: Int? = nil,
                yearly: Int? = nil, total: Int? = nil) {
        self.last = last
        self.hourly = hourly
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly
        self.yearly = yearly
        self.total = total
    }
}

/// What the schedule controller last did and saw.
public struct TalosEtcdBackupScheduleStatus: Codable, Sendable, Equatable {
    public var lastScheduleTime: KubeTime?
    public var lastSuccessfulBackupTime: KubeTime?
    public var nextScheduleTime: KubeTime?
    public var activeBackups: [String]?
    /// The successful backups retention keeps, per tier.
    public var retainedBackups: RetainedBackups?
    /// The last `talos.alperen.cloud/backup-now` value acted on (a backup was made for it).
    public var lastBackupNowRequest: String?
    /// The scheduled time of the last verification run (`spec.verification`): every retained
    /// backup not verified since is checked again.
    public var lastVerificationTime: KubeTime?
    /// When the next verification run is due.
    public var nextVerificationTime: KubeTime?
    /// The retained backups' latest verification results.
    public var verifications: VerificationCounts?
    public var observedGeneration: Int64?
    public var conditions: [Condition]?

    public init() {}
}

extension TalosEtcdBackupSchedule: KubernetesObject {
    public static let resourceType = ResourceType(
        group: CustomResourcesGroup.group, version: CustomResourcesGroup.version, plural: plural, kind: kind)
}
