/// The condition types of both kinds (docs/design.md, Status): typed constants, as
/// ``BackupPhase`` is, so a controller, a test and the documentation cannot drift apart on a
/// spelling.
public enum ConditionType {
    /// Schedule: True while it is active. Backup: True once stored.
    public static let ready = "Ready"
    /// True with the reason a schedule cannot work or a backup finally failed.
    public static let failed = "Failed"
    /// Backup: True while an attempt runs or waits to retry.
    public static let progressing = "Progressing"
}

/// Every reason the operator writes on a condition or an Event, in one place.
public enum ConditionReason {
    // Backups: progress and success.
    public static let running = "Running"
    public static let retrying = "Retrying"
    public static let succeeded = "Succeeded"
    public static let adopted = "Adopted"
    public static let started = "Started"
    // Backups: failures (the `Failed` condition and Warning Events).
    public static let invalidSpec = "InvalidSpec"
    public static let talosConfigNotFound = "TalosConfigNotFound"
    public static let talosConfigInvalid = "TalosConfigInvalid"
    public static let credentialsNotFound = "CredentialsNotFound"
    public static let encryptionConfigNotFound = "EncryptionConfigNotFound"
    public static let encryptionConfigInvalid = "EncryptionConfigInvalid"
    public static let talosUnreachable = "TalosUnreachable"
    public static let talosError = "TalosError"
    public static let snapshotCorrupt = "SnapshotCorrupt"
    public static let snapshotInvalid = "SnapshotInvalid"
    public static let snapshotStalled = "SnapshotStalled"
    public static let attemptTimedOut = "AttemptTimedOut"
    public static let endpointNotAllowed = "EndpointNotAllowed"
    public static let uploadFailed = "UploadFailed"
    public static let objectExists = "ObjectExists"
    public static let objectReplaced = "ObjectReplaced"
    public static let attemptsExhausted = "AttemptsExhausted"
    public static let internalError = "InternalError"
    // Backups: deletion (Events).
    public static let deleted = "Deleted"
    public static let deleteFailed = "DeleteFailed"
    public static let objectLeftInStore = "ObjectLeftInStore"
    public static let objectRetained = "ObjectRetained"
    // Schedules.
    public static let scheduled = "Scheduled"
    public static let paused = "Paused"
    public static let invalidSchedule = "InvalidSchedule"
    public static let invalidTimeZone = "InvalidTimeZone"
    public static let invalidName = "InvalidName"
    public static let backupCreated = "BackupCreated"
    public static let backupCreationFailed = "BackupCreationFailed"
    public static let backupPruned = "BackupPruned"
    public static let missedSchedule = "MissedSchedule"
}
