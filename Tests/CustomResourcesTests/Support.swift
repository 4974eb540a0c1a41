import KubernetesClient
import Foundation
import CustomResources
import TestSupport
import Testing
import Yams


/// Every document of a YAML stream, as JSON trees.
func yamlDocuments(_ text: String) throws -> [JSONValue] {
    try Yams.load_all(yaml: text).map { try jsonValue(from: $0 as Any) }
}

/// Every document of a YAML file under the repository root.
func yamlDocuments(file relativePath: String) throws -> [JSONValue] {
    try yamlDocuments(String(contentsOf: repositoryRoot.appendingPathComponent(relativePath), encoding: .utf8))
}

private func jsonValue(from any: Any) throws -> JSONValue {
    switch any {
    case is NSNull: return .null
    case let value as Bool: return .bool(value)
    case let value as Int: return .integer(Int64(value))
    case let value as Double: return .number(value)
    case let value as String: return .string(value)
    case let value as [Any]: return .array(try value.map(jsonValue))
    case let value as [String: Any]: return .object(try value.mapValues(jsonValue))
    case let value as [AnyHashable: Any]:
        var members: [String: JSONValue] = [:]
        for (key, member) in value { members["\(key.base)"] = try jsonValue(from: member) }
        return .object(members)
    default:
        if Mirror(reflecting: any).displayStyle == .optional { return .null }
        throw YamlConversionError(description: "cannot represent \(type(of: any)) as JSON")
    }
}

struct YamlConversionError: Error, CustomStringConvertible {
    var description: String
}

func jsonData(_ value: JSONValue) throws -> Data {
    try JSONEncoder().encode(value)
}

/// Documents of `kind` in a YAML file.
func documents(of kind: String, file: String) throws -> [JSONValue] {
    try yamlDocuments(file: file).filter { $0["kind"] == .string(kind) }
}
