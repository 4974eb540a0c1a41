import KubernetesCore
import Foundation

/// Decodes API objects and rejects fields the types do not know, naming each by its path.
///
/// Unknown fields: the controllers decode what the API server returns with a plain
/// `JSONDecoder` (like client-go, they ignore fields they do not know; the API server has
/// already pruned the spec against the CRD schema, and kubectl asks it to reject unknown fields
/// with `fieldValidation=Strict`). Manifests that come straight from a user go through this
/// decoder instead, which rejects them: a misspelt `retension:` must not silently become the
/// default. Everything it accepts round-trips losslessly.
public enum StrictDecoding {
    /// Thrown with every field of the input that the decoded value does not carry.
    public struct UnknownFieldsError: Error, CustomStringConvertible, Equatable {
        public var paths: [String]

        public init(paths: [String]) { self.paths = paths }
        public var description: String {
            paths.map { "\($0): unknown field" }.joined(separator: "; ")
        }
    }

    public static func decode<T: Codable>(_ type: T.Type, from data: Data) throws -> T {
        let value = try JSONDecoder().decode(type, from: data)
        let input = try JSONValue.parse(data)
        let output = try JSONValue(encoding: value)
        var unknown: [String] = []
        collectUnknown(input, output, path: "", into: &unknown)
        if !unknown.isEmpty { throw UnknownFieldsError(paths: unknown) }
        return value
    }

    private static func collectUnknown(_ input: JSONValue, _ output: JSONValue?, path: String, into unknown: inout [String]) {
        switch input {
        case .object(let members):
            for key in members.keys.sorted() {
                let member = members[key]!
                let memberPath = path.isEmpty ? key : "\(path).\(key)"
                if case .null = member { continue }
                guard let counterpart = output?[key] else {
                    unknown.append(memberPath)
                    continue
                }
                collectUnknown(member, counterpart, path: memberPath, into: &unknown)
            }
        case .array(let items):
            guard case .array(let outputItems)? = output else { return }
            for (index, item) in items.enumerated() where index < outputItems.count {
                collectUnknown(item, outputItems[index], path: "\(path)[\(index)]", into: &unknown)
            }
        default:
            return
        }
    }
}
