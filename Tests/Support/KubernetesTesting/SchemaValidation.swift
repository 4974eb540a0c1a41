import Foundation
import KubernetesClient

/// What the API server does with a custom resource against its structural openAPIV3Schema:
/// apply `default`s, find unknown fields (pruned, or an error under `fieldValidation=Strict`),
/// and check values (type, required, enum, minimum/maximum, minLength/maxLength, pattern).
/// `metadata` is the server's own and is not checked here.
enum SchemaValidation {
    /// Fills in defaults where the parent object exists and the field is absent.
    static func applyDefaults(_ value: JSONValue, schema: JSONValue) -> JSONValue {
        switch value {
        case .object(var members):
            guard case .object(let properties)? = schema["properties"] else { return value }
            for (name, property) in properties {
                if members[name] == nil, let fallback = property["default"] {
                    members[name] = fallback
                }
                if let member = members[name] {
                    members[name] = applyDefaults(member, schema: property)
                }
            }
            return .object(members)
        case .array(let items):
            guard let itemSchema = schema["items"] else { return value }
            return .array(items.map { applyDefaults($0, schema: itemSchema) })
        default:
            return value
        }
    }

    /// Paths of fields the schema does not declare, and the value with them removed.
    static func prune(_ value: JSONValue, schema: JSONValue, path: String = "") -> (JSONValue, [String]) {
        if schema["x-kubernetes-preserve-unknown-fields"] == .bool(true) { return (value, []) }
        switch value {
        case .object(let members):
            if path == "metadata" { return (value, []) }
            guard case .object(let properties)? = schema["properties"] else {
                if let additional = schema["additionalProperties"], case .object = additional {
                    var result: [String: JSONValue] = [:], unknown: [String] = []
                    for (name, member) in members {
                        let (pruned, inner) = prune(member, schema: additional, path: join(path, name))
                        result[name] = pruned
                        unknown += inner
                    }
                    return (.object(result), unknown)
                }
                return (value, [])
            }
            var result: [String: JSONValue] = [:], unknown: [String] = []
            for (name, member) in members {
                let childPath = join(path, name)
                guard let property = properties[name] else {
                    if path.isEmpty, name == "apiVersion" || name == "kind" || name == "metadata" { result[name] = member; continue }
                    unknown.append(childPath)
                    continue
                }
                let (pruned, inner) = prune(member, schema: property, path: childPath)
                result[name] = pruned
                unknown += inner
            }
            return (.object(result), unknown.sorted())
        case .array(let items):
            guard let itemSchema = schema["items"] else { return (value, []) }
            var result: [JSONValue] = [], unknown: [String] = []
            for (index, item) in items.enumerated() {
                let (pruned, inner) = prune(item, schema: itemSchema, path: "\(path)[\(index)]")
                result.append(pruned)
                unknown += inner
            }
            return (.array(result), unknown)
        default:
            return (value, [])
        }
    }

    /// Every value error, formatted as the API server formats field errors.
    static func validate(_ value: JSONValue, schema: JSONValue, path: String = "") -> [String] {
        if path == "metadata" { return [] }
        var errors: [String] = []
        let where_ = path.isEmpty ? "<root>" : path
        if case .null = value {
            if schema["nullable"] == .bool(true) { return [] }
            return ["\(where_): Invalid value: \"null\": \(where_) in body must be of type \(schema["type"]?.stringValue ?? "object")"]
        }
        if let type = schema["type"]?.stringValue, !matches(value, type: type) {
            return ["\(where_): Invalid value: \"\(typeName(value))\": \(where_) in body must be of type \(type): \"\(typeName(value))\""]
        }
        if case .array(let allowed)? = schema["enum"], !allowed.contains(value) {
            let list = allowed.map { $0.stringValue.map { "\"\($0)\"" } ?? "\($0)" }.joined(separator: ", ")
            errors.append("\(where_): Unsupported value: \(display(value)): supported values: \(list)")
        }
        switch value {
        case .integer, .number:
            let number = numeric(value)
            if let minimum = schema["minimum"].flatMap(numericOptional), number < minimum {
                errors.append("\(where_): Invalid value: \(display(value)): \(where_) in body should be greater than or equal to \(format(minimum))")
            }
            if let maximum = schema["maximum"].flatMap(numericOptional), number > maximum {
                errors.append("\(where_): Invalid value: \(display(value)): \(where_) in body should be less than or equal to \(format(maximum))")
            }
        case .string(let text):
            if let minLength = schema["minLength"].flatMap(numericOptional), Double(text.count) < minLength {
                errors.append("\(where_): Invalid value: \"\(text)\": \(where_) in body should be at least \(format(minLength)) chars long")
            }
            if let maxLength = schema["maxLength"].flatMap(numericOptional), Double(text.count) > maxLength {
                errors.append("\(where_): Too long: may not be more than \(format(maxLength)) bytes")
            }
            if let pattern = schema["pattern"]?.stringValue,
               let regex = try? NSRegularExpression(pattern: pattern),
               regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil {
                errors.append("\(where_): Invalid value: \"\(text)\": \(where_) in body should match '\(pattern)'")
            }
            if schema["format"]?.stringValue == "date-time", !Self.isStrfmtDateTime(text) {
                errors.append("\(where_): Invalid value: \"\(text)\": \(where_) in body must be of type date-time: \"\(text)\"")
            }
        case .object(let members):
            for required in schema["required"]?.stringArray ?? [] where members[required] == nil {
                errors.append("\(join(path, required)): Required value")
            }
            if case .object(let properties)? = schema["properties"] {
                for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                    if let property = properties[name] {
                        errors += validate(member, schema: property, path: join(path, name))
                    }
                }
            }
        case .array(let items):
            if let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() {
                    errors += validate(item, schema: itemSchema, path: "\(path)[\(index)]")
                }
            }
        default:
            break
        }
        return errors
    }

    private static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("integer", .integer): true
        case ("number", .integer), ("number", .number): true
        case ("integer", .number(let double)): double.rounded() == double
        default: false
        }
    }

    private static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .integer: "integer"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    private static func numeric(_ value: JSONValue) -> Double { numericOptional(value) ?? 0 }

    private static func numericOptional(_ value: JSONValue) -> Double? {
        switch value {
        case .integer(let integer): Double(integer)
        case .number(let number): number
        default: nil
        }
    }

    private static func format(_ number: Double) -> String {
        number.rounded() == number ? String(Int64(number)) : String(number)
    }

    private static func display(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): "\"\(text)\""
        case .integer(let integer): String(integer)
        case .number(let number): String(number)
        case .bool(let bool): String(bool)
        default: typeName(value)
        }
    }

    /// What the API server's `format: date-time` check (go-openapi/strfmt's DateTime) accepts:
    /// RFC 3339, and also forms `metav1.Time` (and this operator) cannot read: a local time
    /// without an offset, minutes precision, a space for the `T`. Such a value is stored, and
    /// a client must cope with an object it cannot decode.
    static func isStrfmtDateTime(_ text: String) -> Bool {
        if KubeTime.parse(text) != nil { return true }
        let pattern = #"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"#
        return text.range(of: pattern, options: .regularExpression) != nil
    }
}
