import Foundation
import Timestamps

/// A Kubernetes `metav1.Time`: an instant written as RFC 3339 in UTC with second precision.
///
/// Decoding also accepts fractional seconds (any number of digits) and numeric offsets, which
/// other clients send and the API server accepts for `format: date-time`.
public struct KubeTime: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var date: Date

    public init(_ date: Date) {
        self.date = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = Self.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\"\(text)\" is not an RFC 3339 timestamp")
        }
        self.init(date)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { RFC3339.format(date) }

    /// Parses RFC 3339 (`2026-03-09T06:30:00Z`, `...07:30:00.25+01:00`).
    public static func parse(_ text: String) -> Date? {
        RFC3339.parse(text)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.date < rhs.date }
}
