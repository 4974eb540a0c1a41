/// Why the pipeline refused to store or keep an object, by kind: the operator turns each kind
/// into its condition reason (`BackupFailure.classify`), the CLI prints the message. Errors of
/// the parts (``SnapshotCorrupt``, `BboltInvalid`, S3 and Talos errors) pass through as they
/// are.
public struct PipelineFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// The stream moved less than its floor within the limit (``StallWatchdog``).
        case stalled
        /// An object that is not this backup's is at the key: never overwritten.
        case objectExists
        /// The object changed right after this attempt stored it.
        case objectReplaced
        /// An object an earlier attempt of this backup stored does not match its record.
        case recordMismatch
        /// A stream ended without its checks having finished (a bug, never a snapshot's fault).
        case incomplete
        /// The store took the object but not the server-side encryption asked for.
        case encryptionNotApplied
        /// The store took the object but not the Object Lock asked for.
        case lockNotApplied
        /// S3 Object Lock keeps the object from deletion (until a date, or by a legal hold).
        case objectLocked
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// False when trying again cannot help: the object there stays what it is.
    public var retryable: Bool {
        switch kind {
        case .objectExists, .recordMismatch, .encryptionNotApplied, .lockNotApplied, .objectLocked: false
        case .stalled, .objectReplaced, .incomplete: true
        }
    }

    public var description: String { message }
}
