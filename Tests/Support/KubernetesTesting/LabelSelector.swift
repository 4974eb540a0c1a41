import KubernetesClient

/// A parsed label selector (`a=b,c!=d,e in (f,g),!h,i`) and field selector
/// (`metadata.name=x,metadata.namespace!=y`), with the Kubernetes grammar.
struct Selector: Sendable {
    enum Requirement: Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    var requirements: [Requirement] = []

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    init(parsing text: String?) throws {
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        for term in Self.splitTerms(text) {
            let trimmed = term.trimmingCharacters(in: .whitespaces)
            if let range = trimmed.range(of: " notin ") {
                requirements.append(.notIn(String(trimmed[..<range.lowerBound]).trimmed, try Self.set(trimmed[range.upperBound...])))
            } else if let range = trimmed.range(of: " in ") {
                requirements.append(.isIn(String(trimmed[..<range.lowerBound]).trimmed, try Self.set(trimmed[range.upperBound...])))
            } else if let range = trimmed.range(of: "!=") {
                requirements.append(.notEquals(String(trimmed[..<range.lowerBound]).trimmed, String(trimmed[range.upperBound...]).trimmed))
            } else if let range = trimmed.range(of: "==") ?? trimmed.range(of: "=") {
                requirements.append(.equals(String(trimmed[..<range.lowerBound]).trimmed, String(trimmed[range.upperBound...]).trimmed))
            } else if trimmed.hasPrefix("!") {
                requirements.append(.doesNotExist(String(trimmed.dropFirst()).trimmed))
            } else if !trimmed.isEmpty, !trimmed.contains(" ") {
                requirements.append(.exists(trimmed))
            } else {
                throw ParseError(description: "unable to parse requirement \"\(trimmed)\"")
            }
        }
    }

    /// Splits on commas outside parentheses.
    private static func splitTerms(_ text: String) -> [String] {
        var terms: [String] = [], current = "", depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                terms.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        terms.append(current)
        return terms
    }

    private static func set(_ text: Substring) throws -> Set<String> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("("), trimmed.hasSuffix(")") else {
            throw ParseError(description: "set \"\(trimmed)\" must be in parentheses")
        }
        return Set(trimmed.dropFirst().dropLast().split(separator: ",").map { String($0).trimmed })
    }

    /// Whether `values` (labels, or field values by path) satisfy every requirement.
    func matches(_ values: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): values[key] == value
            case .notEquals(let key, let value): values[key] != value
            case .isIn(let key, let set): values[key].map(set.contains) ?? false
            case .notIn(let key, let set): !(values[key].map(set.contains) ?? false)
            case .exists(let key): values[key] != nil
            case .doesNotExist(let key): values[key] == nil
            }
        }
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespaces) }
}

import Foundation
