/// One recipient stanza of an age header: `-> TYPE ARGS...` and a base64 body.
struct AgeStanza: Equatable {
    var arguments: [String]  // the type first
    var body: [UInt8]

    var type: String { arguments.first ?? "" }

    /// The stanza as the header carries it: body in lines of 64 base64 characters, the last
    /// one shorter (empty when the body fills its lines exactly).
    func encoded() -> String {
        var text = "-> " + arguments.joined(separator: " ") + "\n"
        var encoded = Substring(UnpaddedBase64.encode(body))
        while encoded.count >= 64 {
            text += encoded.prefix(64) + "\n"
            encoded = encoded.dropFirst(64)
        }
        return text + encoded + "\n"
    }
}

/// The textual header of an age v1 file (C2SP age specification, "Header"), parsed strictly:
/// LF line endings only, canonical unpadded base64, full 64-character body lines but the last.
struct AgeHeader {
    static let versionLine = "age-encryption.org/v1"
    /// Headers larger than this are refused (no real header comes close).
    static let maximumSize = 64 * 1024

    var stanzas: [AgeStanza]
    /// The header up to and including `---`: what the MAC covers.
    var macInput: [UInt8]
    var mac: [UInt8]

    /// The header's text without the MAC: the version line, the stanzas, and `---`.
    static func macInput(for stanzas: [AgeStanza]) -> [UInt8] {
        Array((versionLine + "\n" + stanzas.map { $0.encoded() }.joined() + "---").utf8)
    }

    /// Parses a header from the start of `bytes`: the header and how many bytes it took (the
    /// payload starts there); nil while `bytes` may still be an incomplete header.
    static func parse(_ bytes: [UInt8]) throws -> (header: AgeHeader, length: Int)? {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var end: Int?
        while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = bytes[start..<newline]
            lines.append(line)
            start = newline + 1
            if line.starts(with: Array("---".utf8)) {
                end = start
                break
            }
        }
        guard let end else {
            if bytes.count > maximumSize { throw AgeError.malformedHeader("no end of header in the first \(maximumSize) bytes") }
            if let first = lines.first, String(decoding: first, as: UTF8.self) != versionLine {
                throw AgeError.malformedHeader("the first line is not \(versionLine)")
            }
            return nil
        }
        guard String(decoding: lines[0], as: UTF8.self) == versionLine else {
            throw AgeError.malformedHeader("the first line is not \(versionLine)")
        }
        var stanzas: [AgeStanza] = []
        var index = 1
        while index < lines.count - 1 {
            let line = lines[index]
            guard line.starts(with: Array("-> ".utf8)) else { throw AgeError.malformedHeader("a stanza line does not start with \"-> \"") }
            let arguments = line.dropFirst(3).split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard !arguments.isEmpty, arguments.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (33...126).contains($0) } }) else {
                throw AgeError.malformedHeader("a stanza has an empty or invalid argument")
            }
            index += 1
            var body: [UInt8] = []
            while true {
                guard index < lines.count - 1 else { throw AgeError.malformedHeader("a stanza's body has no final short line") }
                let bodyLine = lines[index]
                index += 1
                guard bodyLine.count <= 64, let decoded = UnpaddedBase64.decode(Substring(decoding: bodyLine, as: UTF8.self)) else {
                    throw AgeError.malformedHeader("a stanza body line is not canonical base64 of at most 64 characters")
                }
                body += decoded
                if bodyLine.count < 64 { break }
            }
            stanzas.append(AgeStanza(arguments: arguments.map { String(decoding: $0, as: UTF8.self) }, body: body))
        }
        let last = lines[lines.count - 1]
        guard last.starts(with: Array("--- ".utf8)), let mac = UnpaddedBase64.decode(Substring(decoding: last.dropFirst(4), as: UTF8.self)),
              mac.count == 32 else {
            throw AgeError.malformedHeader("the MAC line is not \"--- \" and a canonical base64 HMAC-SHA-256")
        }
        guard !stanzas.isEmpty else { throw AgeError.malformedHeader("no recipient stanza") }
        let macInput = Array(bytes[..<(end - 1 - (last.count - 3))])
        return (AgeHeader(stanzas: stanzas, macInput: macInput, mac: mac), end)
    }
}
