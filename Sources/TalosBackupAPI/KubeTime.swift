import Cron
import Foundation

/// A Kubernetes `metav1.Time`: an instant written as RFC 3339 in UTC with second precision.
public struct KubeTime: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var date: Date

    public init(_ date: Date) {
        self.date = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\"\(text)\" is not an RFC 3339 timestamp")
        }
        self.init(date)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(RFC3339.format(date))
    }

    public var description: String { RFC3339.format(date) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.date < rhs.date }
}
