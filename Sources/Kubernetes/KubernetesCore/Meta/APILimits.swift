/// Limits the API server enforces on what the operator writes, and the one way text is cut to
/// fit them. Text from outside (an S3 error body can be megabytes) must never make a status or
/// Event write fail: the API server would refuse the whole object, and the failure it reports
/// would be lost.
public enum APILimits {
    /// `metav1.Condition.message`'s `maxLength` (Unicode code points).
    public static let conditionMessage = 32_768
    /// An `events.k8s.io/v1` Event's `note`, in bytes.
    public static let eventNote = 1_024
    /// An object name (a DNS subdomain), in characters.
    public static let objectName = 253
}

extension String {
    /// At most `limit` Unicode scalars (what an OpenAPI `maxLength` counts), cut at a character
    /// boundary and ending in "…" when cut.
    public func truncated(toScalars limit: Int) -> String {
        guard unicodeScalars.count > limit else { return self }
        var result = ""
        var scalars = 0
        for character in self {
            let count = character.unicodeScalars.count
            guard scalars + count <= limit - 1 else { break }
            result.append(character)
            scalars += count
        }
        return result + "…"
    }

    /// At most `limit` bytes of UTF-8, cut at a character boundary and ending in "…" when cut.
    public func truncated(toUTF8Bytes limit: Int) -> String {
        guard utf8.count > limit else { return self }
        let ellipsis = "…"
        var result = ""
        var bytes = 0
        for character in self {
            let count = character.utf8.count
            guard bytes + count <= limit - ellipsis.utf8.count else { break }
            result.append(character)
            bytes += count
        }
        return result + ellipsis
    }
}
