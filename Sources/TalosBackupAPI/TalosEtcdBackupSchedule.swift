import KubernetesCore
import Foundation

/// A cron schedule that creates ``TalosEtcdBackup`` objects and prunes old successful ones.
public struct TalosEtcdBackupSchedule: Codable, Sendable, Equatable {
    public static let kind = "TalosEtcdBackupSchedule"
    public static let plural = "talosetcdbackupschedules"
    /// Label carried by every backup a schedule creates; its value is the schedule's name.
    public static let backupScheduleLabel = "talos.alperen.cloud/backup-schedule"

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    @RequiredField public var spec: TalosEtcdBackupScheduleSpec
    public var status: TalosEtcdBackupScheduleStatus?

    public init(metadata: ObjectMeta, spec: TalosEtcdBackupScheduleSpec, status: TalosEtcdBackupScheduleStatus? = nil) {
        self.apiVersion = TalosBackupAPIGroup.apiVersion
        self.kind = Self.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
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
    public var concurrencyPolicy: String?
    public var failedBackupsHistoryLimit: Int?

    public init(
        schedule: String, backupTemplate: BackupTemplate, retention: Int? = nil, paused: Bool? = nil,
        timeZone: String? = nil, startingDeadlineSeconds: Int64? = nil, concurrencyPolicy: String? = nil,
        failedBackupsHistoryLimit: Int? = nil
    ) {
        self.schedule = schedule
        self.backupTemplate = backupTemplate
        self.retention = retention
        self.paused = paused
        self.timeZone = timeZone
        self.startingDeadlineSeconds = startingDeadlineSeconds
        self.concurrencyPolicy = concurrencyPolicy
        self.failedBackupsHistoryLimit = failedBackupsHistoryLimit
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
public enum ConcurrencyPolicy: String, Sendable, CaseIterable {
    /// Skip the run while a backup of this schedule is neither succeeded nor failed.
    case forbid = "Forbid"
    /// Start the run regardless.
    case allow = "Allow"
}

/// What the schedule controller last did and saw.
public struct TalosEtcdBackupScheduleStatus: Codable, Sendable, Equatable {
    public var lastScheduleTime: KubeTime?
    public var lastSuccessfulBackupTime: KubeTime?
    public var nextScheduleTime: KubeTime?
    public var activeBackups: [String]?
    public var observedGeneration: Int64?
    public var conditions: [Condition]?

    public init() {}
}

extension TalosEtcdBackupSchedule: KubernetesObject {
    public static let resourceType = ResourceType(
        group: TalosBackupAPIGroup.group, version: TalosBackupAPIGroup.version, plural: plural, kind: kind)
}
