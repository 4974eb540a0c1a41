/// Why an age file could not be written or read. Each case says what is wrong, never which key
/// material was involved.
public enum AgeError: Error, Equatable, CustomStringConvertible {
    /// A recipient (`age1...`) or identity (`AGE-SECRET-KEY-1...`) that is not one.
    case invalidKey(String)
    /// The header is not a well-formed age v1 header.
    case malformedHeader(String)
    /// No identity opens any X25519 stanza of the header.
    case noMatchingIdentity
    /// The header's MAC does not match: the header was altered (or the file key is wrong).
    case headerMACMismatch
    /// The payload is cut short, altered, or has bytes after its last chunk.
    case corruptPayload(String)
    /// Encrypting needs at least one recipient.
    case noRecipients

    public var description: String {
        switch self {
        case .invalidKey(let problem): "invalid age key: \(problem)"
        case .malformedHeader(let problem): "not an age v1 file: \(problem)"
        case .noMatchingIdentity: "no identity matches any recipient of this age file (wrong --identity?)"
        case .headerMACMismatch: "the age header's MAC does not match: the file was altered"
        case .corruptPayload(let problem): "the age payload is damaged: \(problem)"
        case .noRecipients: "no age recipients"
        }
    }
}
