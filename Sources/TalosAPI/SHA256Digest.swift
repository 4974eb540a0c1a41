import Crypto
import Foundation

/// Incremental SHA-256 with a hex result, for callers that do not import Crypto themselves.
public struct SHA256Digest: Sendable {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ data: Data) { hasher.update(data: data) }

    /// Hex of the digest (consumes nothing: a copy is finalized).
    public func hex() -> String {
        hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
