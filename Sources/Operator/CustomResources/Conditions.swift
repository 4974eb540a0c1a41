/// The condition types of both kinds (docs/design.md, Status): a typed vocabulary, as
/// ``BackupPhase`` is, so a controller, a test and the documentation cannot drift apart on a
/// spelling.
public enum ConditionType: String, Sendable, CaseIterable {
    /// Schedule: True while it is active. Backup: True once stored.
    case ready = "Ready"
    /// True with the reason a schedule cannot work or a backup finally failed.
    case failed = "Failed"
    /// Backup: True while an attempt runs or waits to retry.
    case progressing = "Progressing"
    /// Backup: whether its stored objects, read back, still match its record.
    case verified = "Verified"
}

/// Every reason the operator writes on a condition or an Event, in one place.
public enum ConditionReason: String, Sendable, CaseIterable {
    // Backups: progress and success.
    case running = "Running"
    case retrying = "Retrying"
    case succeeded = "Succeeded"
    case adopted = "Adopted"
    case started = "Started"
    // Backups: failures (the `Failed` condition and Warning Events).
    case invalidSpec = "InvalidSpec"
    case talosConfigNotFound = "TalosConfigNotFound"
    case talosConfigInvalid = "TalosConfigInvalid"
    case credentialsNotFound = "CredentialsNotFound"
    case encryptionConfigNotFound = "EncryptionConfigNotFound"
    case encryptionConfigInvalid = "EncryptionConfigInvalid"
    case stateSecretNotFound = "StateSecretNotFound"
    case stateSecretInvalid = "StateSecretInvalid"
    case talosUnreachable = "TalosUnreachable"
    case talosError = "TalosError"
    case snapshotCorrupt = "SnapshotCorrupt"
    case snapshotInvalid = "SnapshotInvalid"
    case snapshotStalled = "SnapshotStalled"
    case attemptTimedOut = "AttemptTimedOut"
    case endpointNotAllowed = "EndpointNotAllowed"
    case uploadFailed = "UploadFailed"
    case objectExists = "ObjectExists"
    case objectReplaced = "ObjectReplaced"
    case attemptsExhausted = "AttemptsExhausted"
    case internalError = "InternalError"
    // Backups: deletion (Events).
    case deleted = "Deleted"
    case deleteFailed = "DeleteFailed"
    case objectLeftInStore = "ObjectLeftInStore"
    /// S3 Object Lock keeps the objects from deletion for now.
    case objectLocked = "ObjectLocked"
    case objectRetained = "ObjectRetained"
    // Backups: verification of the stored objects (the `Verified` condition and Events).
    case verificationPassed = "VerificationPassed"
    case objectMissing = "ObjectMissing"
    case objectChanged = "ObjectChanged"
    case verificationError = "VerificationError"
    case invalidVerificationSchedule = "InvalidVerificationSchedule"
    // Schedules.
    case scheduled = "Scheduled"
    case paused = "Paused"
    case invalidSchedule = "InvalidSchedule"
    case invalidTimeZone = "InvalidTimeZone"
    case invalidName = "InvalidName"
    case backupCreated = "BackupCreated"
    case backupCreationFailed = "BackupCreationFailed"
    case backupPruned = "BackupPruned"
    case missedSchedule = "MissedSchedule"
}

/// What the operator did when it wrote an Event (the Event's `action`).
public enum EventAction: String, Sendable, CaseIterable {
    case backup = "Backup"
    case delete = "Delete"
    case prune = "Prune"
    case schedule = "Schedule"
    case validate = "Validate"
    case verify = "Verify"
}

// Interpolated as the API spells them (in messages, logs and metric labels).
extension ConditionType: CustomStringConvertible { public var description: String { rawValue } }
extension ConditionReason: CustomStringConvertible { public var description: String { rawValue } }
extension EventAction: CustomStringConvertible { public var description: String { rawValue } }
