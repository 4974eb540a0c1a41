/// Bech32 (BIP 173) as age uses it for recipients (`age1...`) and identities
/// (`AGE-SECRET-KEY-1...`): the original checksum constant, no length limit, one case.
enum Bech32 {
    private static let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let reverse: [UInt8: UInt8] = Dictionary(uniqueKeysWithValues: alphabet.enumerated().map { ($1, UInt8($0)) })

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var checksum: UInt32 = 1
        for value in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ff_ffff) << 5 ^ UInt32(value)
            for index in 0..<5 where (top >> index) & 1 == 1 { checksum ^= generator[index] }
        }
        return checksum
    }

    private static func expand(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// 8-bit bytes to 5-bit groups (padded) or back (padding must be zero bits).
    private static func regroup(_ data: [UInt8], from: Int, to: Int, pad: Bool) throws -> [UInt8] {
        var accumulator = 0, bits = 0
        var result: [UInt8] = []
        let mask = (1 << to) - 1
        for value in data {
            accumulator = (accumulator << from) | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                result.append(UInt8((accumulator >> bits) & mask))
            }
        }
        if pad {
            if bits > 0 { result.append(UInt8((accumulator << (to - bits)) & mask)) }
        } else if bits >= from || (accumulator << (to - bits)) & mask != 0 {
            throw Invalid(description: "non-zero padding")
        }
        return result
    }

    /// `hrp` + "1" + data + checksum, in lower case (callers upper-case identities).
    static func encode(hrp: String, data: [UInt8]) -> String {
        let hrpBytes = Array(hrp.lowercased().utf8)
        let groups = (try? regroup(data, from: 8, to: 5, pad: true)) ?? []
        let checksum = polymod(expand(hrpBytes) + groups + [0, 0, 0, 0, 0, 0]) ^ 1
        let checksumGroups = (0..<6).map { UInt8((checksum >> (5 * (5 - UInt32($0)))) & 31) }
        return String(decoding: hrpBytes + [UInt8(ascii: "1")] + (groups + checksumGroups).map { alphabet[Int($0)] }, as: UTF8.self)
    }

    /// The human-readable part (lower case) and the data of a Bech32 string, all one case.
    static func decode(_ text: String) throws -> (hrp: String, data: [UInt8]) {
        guard text == text.lowercased() || text == text.uppercased() else { throw Invalid(description: "mixed case") }
        let bytes = Array(text.lowercased().utf8)
        guard let separator = bytes.lastIndex(of: UInt8(ascii: "1")), separator >= 1, bytes.count - separator - 1 >= 6 else {
            throw Invalid(description: "no separator or checksum")
        }
        let hrp = Array(bytes[..<separator])
        guard hrp.allSatisfy({ (33...126).contains($0) }) else { throw Invalid(description: "invalid prefix") }
        var groups: [UInt8] = []
        for byte in bytes[(separator + 1)...] {
            guard let value = reverse[byte] else { throw Invalid(description: "invalid character") }
            groups.append(value)
        }
        guard polymod(expand(hrp) + groups) == 1 else { throw Invalid(description: "bad checksum") }
        let data = try regroup(Array(groups.dropLast(6)), from: 5, to: 8, pad: false)
        return (String(decoding: hrp, as: UTF8.self), data)
    }
}
