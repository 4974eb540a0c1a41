import Foundation

/// A parsed XML element: enough of a DOM for S3's small response documents. Named so that
/// it does not shadow Foundation's `XMLElement`.
struct S3XMLElement: Sendable, Equatable {
    var name: String
    /// The element's own text (not its children's), entities decoded, line ends normalized.
    var text: String
    var children: [S3XMLElement]

    /// The first child named `name`.
    func child(_ name: String) -> S3XMLElement? { children.first { $0.name == name } }

    /// Every child named `name`.
    func children(_ name: String) -> [S3XMLElement] { children.filter { $0.name == name } }

    /// Text of the first child named `name`.
    subscript(_ name: String) -> String? { child(name)?.text }

    /// The deepest nesting read: S3's answers are four levels deep at most.
    static let maximumDepth = 32
    /// The most elements read from one document: a listing page holds at most 1,000 entries
    /// of about ten fields. More is refused, so a 16 MiB answer of `<a/>` cannot cost hundreds
    /// of MiB as a tree.
    static let maximumElements = 100_000

    /// The document's root element, or nil when `data` is not a well-formed document of the
    /// kind S3 sends: UTF-8, one root element, the predefined and numeric character references,
    /// CDATA sections, comments and processing instructions. A document type declaration is
    /// refused (S3 never sends one; it is where entity expansion attacks live), and so are
    /// nesting deeper than ``maximumDepth`` and more than ``maximumElements`` elements.
    ///
    /// A reader of our own rather than Foundation's `XMLParser`: that one leaks memory on every
    /// malformed document (found by the fuzz target), and it brings libxml2 and ICU into the
    /// image for documents this small.
    static func parse(_ data: Data) -> S3XMLElement? {
        var reader = XMLReader(bytes: Array(data))
        return reader.document()
    }
}

/// A strict reader of the XML subset ``S3XMLElement/parse(_:)`` describes; time and memory
/// linear in the input.
private struct XMLReader {
    let bytes: [UInt8]
    var position = 0
    var elements = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
        // A UTF-8 byte order mark.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
    }

    mutating func document() -> S3XMLElement? {
        guard skipMisc() else { return nil }
        guard position < bytes.count, bytes[position] == UInt8(ascii: "<") else { return nil }
        guard let root = element() else { return nil }
        guard skipMisc(), position == bytes.count else { return nil }
        return root
    }

    /// Skips white space, comments and processing instructions (the XML declaration among
    /// them) between elements; false on a malformed one or a document type declaration.
    mutating func skipMisc() -> Bool {
        while position < bytes.count {
            if isSpace(bytes[position]) {
                position += 1
            } else if consume("<?") {
                guard skip(past: "?>") else { return false }
            } else if consume("<!--") {
                guard skip(past: "-->") else { return false }
            } else {
                return !starts(with: "<!")
            }
        }
        return true
    }

    /// An element from its `<` to its end, with its descendants, read without recursion.
    mutating func element() -> S3XMLElement? {
        var stack: [S3XMLElement] = []
        var text: [[UInt8]] = []
        repeat {
            guard position < bytes.count else { return nil }
            if bytes[position] == UInt8(ascii: "<") {
                if starts(with: "</") {
                    position += 2
                    guard let name = name(), var open = stack.popLast(), open.name.utf8.elementsEqual(name.utf8) else { return nil }
                    skipSpaces()
                    guard consume(">"), let content = decode(text.removeLast()) else { return nil }
                    open.text = content
                    if stack.isEmpty { return open }
                    stack[stack.count - 1].children.append(open)
                } else if consume("<!--") {
                    guard skip(past: "-->") else { return nil }
                } else if starts(with: "<![CDATA[") {
                    position += 9
                    guard let end = find("]]>"), !stack.isEmpty else { return nil }
                    text[text.count - 1] += escapeForText(bytes[position..<end])
                    position = end + 3
                } else if consume("<?") {
                    guard skip(past: "?>") else { return nil }
                } else {
                    position += 1
                    // `<!DOCTYPE`, `<!ENTITY`: declarations are not read.
                    guard position < bytes.count, bytes[position] != UInt8(ascii: "!") else { return nil }
                    guard let name = name(), skipAttributes() else { return nil }
                    elements += 1
                    guard elements <= S3XMLElement.maximumElements else { return nil }
                    let opened = S3XMLElement(name: name, text: "", children: [])
                    if consume("/>") {
                        if stack.isEmpty { return opened }
                        stack[stack.count - 1].children.append(opened)
                    } else {
                        guard consume(">"), stack.count < S3XMLElement.maximumDepth else { return nil }
                        stack.append(opened)
                        text.append([])
                    }
                }
            } else {
                let start = position
                while position < bytes.count, bytes[position] != UInt8(ascii: "<") { position += 1 }
                guard !stack.isEmpty else { return nil }
                text[text.count - 1] += bytes[start..<position]
            }
        } while !stack.isEmpty
        return nil
    }

    /// A name: up to white space, `/`, `>` or `=`; nil when empty or not UTF-8.
    mutating func name() -> String? {
        let start = position
        while position < bytes.count, !isSpace(bytes[position]), !"/>=<\"'".utf8.contains(bytes[position]) { position += 1 }
        guard position > start else { return nil }
        return String(validating: bytes[start..<position], as: UTF8.self)
    }

    /// Attributes (`name="value"` or `name='value'`), read and dropped: S3's only attribute is
    /// the namespace declaration.
    mutating func skipAttributes() -> Bool {
        while true {
            let hadSpace = position < bytes.count && isSpace(bytes[position])
            skipSpaces()
            guard position < bytes.count else { return false }
            if bytes[position] == UInt8(ascii: ">") || starts(with: "/>") { return true }
            guard hadSpace, name() != nil else { return false }
            skipSpaces()
            guard consume("=") else { return false }
            skipSpaces()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") || bytes[position] == UInt8(ascii: "'") else { return false }
            let quote = bytes[position]
            position += 1
            while position < bytes.count, bytes[position] != quote {
                guard bytes[position] != UInt8(ascii: "<") else { return false }
                position += 1
            }
            guard position < bytes.count else { return false }
            position += 1
        }
    }

    /// Character data with its references decoded and line ends normalized to `\n`; nil on
    /// an unknown or malformed reference, or bytes that are not UTF-8. Works on bytes: a
    /// reference's `;` followed by a combining mark is still its end.
    func decode(_ raw: [UInt8]) -> String? {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(raw.count)
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            switch byte {
            case 0x0D:
                decoded.append(0x0A)
                index += index + 1 < raw.count && raw[index + 1] == 0x0A ? 2 : 1
            case UInt8(ascii: "&"):
                guard let end = raw[index...].prefix(12).firstIndex(of: UInt8(ascii: ";")),
                      let scalar = Self.reference(raw[(index + 1)..<end]) else { return nil }
                decoded += Array(String(scalar).utf8)
                index = end + 1
            default:
                decoded.append(byte)
                index += 1
            }
        }
        return String(validating: decoded, as: UTF8.self)
    }

    /// The character a reference names (`amp`, `#65`, `#x41`); nil for any other.
    static func reference(_ name: ArraySlice<UInt8>) -> Unicode.Scalar? {
        switch String(decoding: name, as: UTF8.self) {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        case let text where text.hasPrefix("#x"):
            return UInt32(text.dropFirst(2), radix: 16).flatMap { $0 == 0 ? nil : Unicode.Scalar($0) }
        case let text where text.hasPrefix("#"):
            return UInt32(text.dropFirst(), radix: 10).flatMap { $0 == 0 ? nil : Unicode.Scalar($0) }
        default: return nil
        }
    }

    /// CDATA's content as character data: its `&` and `<` are literal.
    func escapeForText(_ raw: ArraySlice<UInt8>) -> [UInt8] {
        var escaped: [UInt8] = []
        escaped.reserveCapacity(raw.count)
        for byte in raw {
            switch byte {
            case UInt8(ascii: "&"): escaped += Array("&amp;".utf8)
            case UInt8(ascii: "<"): escaped += Array("&lt;".utf8)
            default: escaped.append(byte)
            }
        }
        return escaped
    }

    func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    mutating func skipSpaces() {
        while position < bytes.count, isSpace(bytes[position]) { position += 1 }
    }

    func starts(with literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count else { return false }
        return literal.withUTF8Buffer { bytes[position..<position + count].elementsEqual($0) }
    }

    mutating func consume(_ literal: StaticString) -> Bool {
        guard starts(with: literal) else { return false }
        position += literal.utf8CodeUnitCount
        return true
    }

    /// Where `literal` next occurs at or after the position.
    func find(_ literal: StaticString) -> Int? {
        literal.withUTF8Buffer { needle in
            var index = position
            while index + needle.count <= bytes.count {
                if bytes[index..<index + needle.count].elementsEqual(needle) { return index }
                index += 1
            }
            return nil
        }
    }

    mutating func skip(past literal: StaticString) -> Bool {
        guard let end = find(literal) else { return false }
        position = end + literal.utf8CodeUnitCount
        return true
    }
}

/// XML escaping for the few documents the client writes, byte by byte: in UTF-8 the bytes of
/// `&`, `<`, `>` and `"` are those characters and nothing else (a `<` followed by a combining
/// mark is still a `<`), and the output grows in one buffer, linear in the input.
enum XMLEscape {
    static func escape(_ text: String) -> String {
        var escaped: [UInt8] = []
        escaped.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "&"): escaped += "&amp;".utf8
            case UInt8(ascii: "<"): escaped += "&lt;".utf8
            case UInt8(ascii: ">"): escaped += "&gt;".utf8
            case UInt8(ascii: "\""): escaped += "&quot;".utf8
            default: escaped.append(byte)
            }
        }
        return String(decoding: escaped, as: UTF8.self)
    }
}
