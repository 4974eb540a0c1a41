import Yams

/// Reads a configuration file's YAML (a kubeconfig, a talosconfig) into its Decodable type,
/// the one way both readers do it. Errors are ``ConfigurationError``s that name the position
/// and the problem but never quote the file: Yams' own error text carries the offending line,
/// and that line can hold a token or a private key.
public enum YAMLConfiguration {
    /// The document in `text` as `T`, or nil when it is empty. Anything but a mapping at the
    /// top, invalid YAML, or a field of the wrong shape throws, naming `source`.
    public static func decode<T: Decodable>(_ type: T.Type, from text: String, source: String) throws -> T? {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError(source: source, problem: "is not valid YAML (\(describe(error)))")
        }
        guard let node else { return nil }
        guard node.mapping != nil else { throw ConfigurationError(source: source, problem: "is not a YAML mapping") }
        do {
            return try YAMLDecoder().decode(T.self, from: node)
        } catch let error as DecodingError {
            throw ConfigurationError(source: source, decoding: error)
        } catch {
            throw ConfigurationError(source: source, problem: "cannot be read as YAML (\(describe(error)))")
        }
    }

    /// Where and what, without the text around it.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? YamlError else { return "unreadable" }
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)"
        case .reader(let problem, let offset, _, _):
            return offset.map { "byte \($0): \(problem)" } ?? problem
        case .duplicatedKeysInMapping: return "a mapping has the same key twice"
        case .memory: return "out of memory"
        default: return "unreadable"
        }
    }
}
