import Yams

/// Reads a configuration file's YAML (a kubeconfig, a talosconfig) into its Decodable type,
/// the one way both readers do it. Errors are ``ConfigurationError``s that name the position
/// and the problem but never quote the file: Yams' own error text carries the offending line,
/// and that line can hold a token or a private key.
///
/// Anchors and aliases are refused before Yams sees the text: Yams hashes every mapping key
/// whole (its duplicate-key check), so a key that aliases nested aliased lists costs time
/// exponential in the nesting (a 200-byte talosconfig, which a tenant writes, took minutes).
/// talosctl and kubectl never write them.
public enum YAMLConfiguration {
    /// The document in `text` as `T`, or nil when it is empty. Anything but a mapping at the
    /// top, invalid YAML, or a field of the wrong shape throws, naming `source`.
    public static func decode<T: Decodable>(_ type: T.Type, from text: String, source: String) throws -> T? {
        if let (line, column) = anchorOrAlias(in: text) {
            throw ConfigurationError(source: source, problem: "uses a YAML anchor or alias (line \(line), column \(column)); they are not accepted here (talosctl and kubectl never write them)")
        }
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

    /// The lines of `text` split at every line break libyaml knows (YAML 1.1): LF, CR, NEL,
    /// LS and PS (CR LF is one).
    static func lines(_ text: String) -> [[UInt8]] {
        var lines: [[UInt8]] = [[]]
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            var breakLength = 0
            if byte == 0x0D, index + 1 < bytes.count, bytes[index + 1] == 0x0A {
                breakLength = 2
            } else if byte == 0x0A || byte == 0x0D {
                breakLength = 1
            } else if byte == 0xC2, index + 1 < bytes.count, bytes[index + 1] == 0x85 {
                breakLength = 2
            } else if byte == 0xE2, index + 2 < bytes.count, bytes[index + 1] == 0x80, bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9 {
                breakLength = 3
            }
            if breakLength > 0 {
                lines.append([])
                index += breakLength
            } else {
                lines[lines.count - 1].append(byte)
                index += 1
            }
        }
        return lines
    }

    /// Where the text's first anchor (`&name`) or alias (`*name`) is, or nil: a scan of YAML's
    /// syntax that finds every place a node can begin, so that it misses no alias libyaml would
    /// read (it may refuse an odd file that has none). A node begins at the start of a line's
    /// content, after `[`, `{` and `,`, after a `:` followed by white space (or right after a
    /// quoted key), after a `-` or `?` entry indicator, after a document marker and after a tag.
    /// Quoted scalars are skipped only within their line (a quote left open at the end of a
    /// line is taken as text, so nothing after it is hidden), and comments after white space.
    static func anchorOrAlias(in text: String) -> (line: Int, column: Int)? {
        let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), cr = UInt8(0x0D)
        func isBlank(_ byte: UInt8) -> Bool { byte == space || byte == tab || byte == cr }
        var lineNumber = 0
        for line in lines(text) {
            lineNumber += 1
            var bytes = line
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }  // a byte order mark
            func blankOrEnd(_ index: Int) -> Bool { index >= bytes.count || isBlank(bytes[index]) }
            var nodeStart = true
            var afterQuote = false  // the last token was a quoted scalar (a key, in `"a":*b`)
            var index = 0
            if bytes.starts(with: Array("---".utf8)) || bytes.starts(with: Array("...".utf8)) { index = 3 }
            while index < bytes.count {
                let byte = bytes[index]
                if isBlank(byte) {
                    index += 1
                    continue
                }
                if byte == UInt8(ascii: "#"), index == 0 || isBlank(bytes[index - 1]) { break }  // a comment
                let quoted = afterQuote
                afterQuote = false
                let anchorOrAlias = byte == UInt8(ascii: "&") || byte == UInt8(ascii: "*")
                let quote = byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")
                if nodeStart && anchorOrAlias {
                    return (lineNumber, index + 1)
                } else if nodeStart && quote {
                    // Skip to the closing quote on this line; none: the quote is text.
                    var end = index + 1
                    while end < bytes.count, bytes[end] != byte {
                        end += byte == UInt8(ascii: "\"") && bytes[end] == UInt8(ascii: "\\") ? 2 : 1
                    }
                    nodeStart = false
                    if end < bytes.count {
                        index = end + 1
                        afterQuote = true
                        continue
                    }
                } else if nodeStart && byte == UInt8(ascii: "!") {
                    // A tag: the node is still to come. It ends at white space or, in a flow
                    // collection, at a flow indicator (`[!!str,*a]` holds an alias).
                    while index < bytes.count, !isBlank(bytes[index]), !"[]{},".utf8.contains(bytes[index]) { index += 1 }
                    continue
                } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") || byte == UInt8(ascii: ",") {
                    nodeStart = true
                } else if byte == UInt8(ascii: ":") && (blankOrEnd(index + 1) || quoted) {
                    nodeStart = true
                } else if nodeStart && (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "?")) && blankOrEnd(index + 1) {
                    nodeStart = true
                } else {
                    nodeStart = false
                }
                index += 1
            }
        }
        return nil
    }
}
