import KubernetesCore
/// Writes a ``JSONValue`` as block-style YAML with sorted keys (as `kubectl get -o yaml` does),
/// quoting every string that a YAML 1.1 or 1.2 reader could take for anything but a string.
public enum YAML {
    public static func render(_ value: JSONValue) -> String {
        var out = ""
        switch value {
        case .object(let members) where !members.isEmpty:
            writeMembers(members, indent: 0, into: &out)
        case .array(let items) where !items.isEmpty:
            writeItems(items, indent: 0, into: &out)
        default:
            out = scalar(value) + "\n"
        }
        return out
    }

    private static func writeMembers(_ members: [String: JSONValue], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for key in members.keys.sorted() {
            let value = members[key]!
            out += pad + string(key) + ":"
            switch value {
            case .object(let nested) where !nested.isEmpty:
                out += "\n"
                writeMembers(nested, indent: indent + 2, into: &out)
            case .array(let items) where !items.isEmpty:
                out += "\n"
                writeItems(items, indent: indent, into: &out)
            default:
                out += " " + scalar(value) + "\n"
            }
        }
    }

    private static func writeItems(_ items: [JSONValue], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for item in items {
            switch item {
            case .object(let members) where !members.isEmpty:
                // The first member goes on the dash's line; the rest align under it.
                var nested = ""
                writeMembers(members, indent: indent + 2, into: &nested)
                out += pad + "- " + nested.dropFirst(indent + 2)
            case .array(let nestedItems) where !nestedItems.isEmpty:
                out += pad + "-\n"
                writeItems(nestedItems, indent: indent + 2, into: &out)
            default:
                out += pad + "- " + scalar(item) + "\n"
            }
        }
    }

    private static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let bool): return bool ? "true" : "false"
        case .integer(let integer): return String(integer)
        case .number(let number): return String(number)
        case .string(let text): return string(text)
        case .array: return "[]"
        case .object: return "{}"
        }
    }

    private static let reserved: Set<String> = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ]

    /// Plain when unambiguous, else a double-quoted JSON string (valid YAML).
    static func string(_ text: String) -> String {
        let plainCharacters = text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || " _./()=+-,".contains($0)) }
        let plain = plainCharacters
            && text.first.map { $0.isLetter || $0 == "/" } == true
            && text.last != " "
            && !reserved.contains(text.lowercased())
        if plain { return text }
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            default:
                if scalar.value < 0x20 {
                    quoted += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16)
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }
}
