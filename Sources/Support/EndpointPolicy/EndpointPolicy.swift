#if canImport(Glibc)
import Glibc
#endif

/// Which hosts the operator may connect to on a tenant's behalf. One operator serves every
/// namespace and runs inside the cluster's network: without a policy, whoever may create a
/// backup could point its S3 endpoint or talosconfig at the cloud's metadata service or at any
/// address the operator's pod reaches. So addresses in `denied` (by default the link-local
/// range, which holds every cloud's metadata service, and AWS's IPv6 metadata address) are
/// always refused, and with an allow-list only hosts it names may be used.
///
/// A host name is checked by its name against the allow-list's suffixes and by every address it
/// resolves to against the networks. The check runs before each attempt; a name whose DNS
/// answer changes between the check and the connection is not caught (no resolver is pinned).
public struct EndpointPolicy: Sendable, Equatable {
    /// One entry of an allow-list: a network, or a host name (`s3.example.com`) or suffix
    /// (`.example.com`, matching every name under it).
    public enum Rule: Sendable, Equatable, CustomStringConvertible {
        case network(IPNetwork)
        case host(String)
        case suffix(String)

        public var description: String {
            switch self {
            case .network(let network): network.description
            case .host(let name): name
            case .suffix(let suffix): suffix
            }
        }
    }

    /// Link-local networks (169.254.0.0/16 holds AWS's, GCP's, Azure's and OpenStack's metadata
    /// services; fe80::/10), the IPv6 metadata addresses of AWS (fd00:ec2::254) and Oracle Cloud
    /// (fd00:c1::a9fe:a9fe), Alibaba Cloud's 100.100.100.200, and 169.254.0.0/16 reached
    /// through NAT64 (64:ff9b::a9fe:0/112). Loopback is not in it: from the operator's pod it is
    /// the pod itself.
    public static let defaultDenied = [
        "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "fd00:c1::a9fe:a9fe/128", "100.100.100.200/32", "64:ff9b::a9fe:0/112",
    ].map { IPNetwork(parsing: $0)! }

    /// ``defaultDenied`` as `--denied-endpoint-networks` takes it.
    public static var defaultDeniedText: String { defaultDenied.map(\.description).joined(separator: ",") }

    public var denied: [IPNetwork]
    /// Nil: any host whose addresses are not denied.
    public var allowed: [Rule]?

    public init(denied: [IPNetwork] = defaultDenied, allowed: [Rule]? = nil) {
        self.denied = denied
        self.allowed = allowed
    }

    /// Why `host`, which resolved to `addresses`, may not be used; nil when it may.
    public func problem(host: String, addresses: [IPAddress]) -> String? {
        let name = host.lowercased().trimmingSuffix(".")
        for address in addresses {
            guard let network = denied.first(where: { $0.contains(address) }) else { continue }
            return address.description == name
                ? "\(name) is in a denied network (\(network))"
                : "\(name) resolves to \(address), in a denied network (\(network))"
        }
        guard let allowed else { return nil }
        let literal = IPAddress(parsing: name)
        let permitted = allowed.contains { rule in
            switch rule {
            case .host(let allowedName): literal == nil && name == allowedName
            case .suffix(let suffix): literal == nil && name.hasSuffix(suffix)
            case .network(let network): !addresses.isEmpty && addresses.allSatisfy { network.contains($0) }
            }
        }
        return permitted ? nil : "\(name) is not in the allow-list (\(allowed.map(\.description).joined(separator: ", ")))"
    }

    /// Why `host` may not be used, when its name alone decides: an allow-list of names and
    /// suffixes only that it is not on. Nil when its addresses are needed to decide.
    public func problemByName(host: String) -> String? {
        guard let allowed, !allowed.contains(where: { if case .network = $0 { true } else { false } }),
              IPAddress(parsing: host) == nil else { return nil }
        return problem(host: host, addresses: [])
    }

    /// A comma-separated list of networks (`10.0.0.0/8`, `fd00::/8`, or one address), as a flag
    /// gives it; an empty text is an empty list.
    public static func networks(_ text: String, flag: String) throws -> [IPNetwork] {
        try entries(text).map { entry in
            guard let network = IPNetwork(parsing: entry) else {
                throw EndpointPolicyError(message: "\(flag): \"\(entry.prefix(100))\" is not a network (ADDRESS/PREFIX or an address)")
            }
            return network
        }
    }

    /// A comma-separated allow-list: networks, host names, and suffixes starting with '.'.
    public static func rules(_ text: String, flag: String) throws -> [Rule] {
        let rules = try entries(text).map { entry -> Rule in
            if let network = IPNetwork(parsing: entry) { return .network(network) }
            let name = entry.lowercased().trimmingSuffix(".")
            let labels = (name.hasPrefix(".") ? String(name.dropFirst()) : name).split(separator: ".", omittingEmptySubsequences: false)
            guard name.utf8.count <= 253, !labels.isEmpty, labels.allSatisfy({ label in
                !label.isEmpty && label.utf8.count <= 63 && label.utf8.allSatisfy { byte in
                    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                }
            }) else {
                throw EndpointPolicyError(message: "\(flag): \"\(entry.prefix(100))\" is neither a network nor a host name (or a .suffix)")
            }
            return name.hasPrefix(".") ? .suffix(name) : .host(name)
        }
        guard !rules.isEmpty else { throw EndpointPolicyError(message: "\(flag): the list is empty; omit the flag to allow every host") }
        return rules
    }

    private static func entries(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: " \t") }.filter { !$0.isEmpty }
    }
}

/// A flag's list that cannot be read.
public struct EndpointPolicyError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// An IPv4 or IPv6 address; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is its IPv4 address,
/// so that no spelling slips past a network.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 or 16 bytes.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            self.bytes = Array(bytes[12...])
        } else if bytes.count == 4 || bytes.count == 16 {
            self.bytes = bytes
        } else {
            return nil
        }
    }

    /// Dotted IPv4 or textual IPv6 (brackets allowed), as inet_pton reads them.
    public init?(parsing text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        guard text.utf8.count <= 64, !text.contains("%") else { return nil }
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: v4) { Array($0) })
        } else if inet_pton(AF_INET6, String(text), &v6) == 1 {
            self.init(bytes: withUnsafeBytes(of: v6) { Array($0) })
        } else {
            return nil
        }
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let written = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return written == nil ? "?" : String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address range: an address and how many of its leading bits are fixed.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// `ADDRESS/PREFIX`, or one address (a network of that address alone).
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parsing: String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        var length = bits
        if parts.count == 2 {
            guard parts[1].utf8.count <= 3, parts[1].allSatisfy(\.isASCII), let given = Int(parts[1]) else { return nil }
            // A mapped IPv4 network (::ffff:169.254.0.0/112) is its IPv4 network (/16).
            let mapped = bits == 32 && parts[0].contains(":")
            length = mapped ? given - 96 : given
            guard (0...bits).contains(length) else { return nil }
        }
        self.address = address
        self.prefixLength = length
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(address.bytes, candidate.bytes) {
            guard remaining > 0 else { return true }
            let mask: UInt8 = remaining >= 8 ? 0xff : ~(0xff >> UInt8(remaining))
            if a & mask != b & mask { return false }
            remaining -= 8
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }

    fileprivate func trimmingCharacters(in set: String) -> String {
        var scalars = Substring(self)
        while let first = scalars.first, set.contains(first) { scalars = scalars.dropFirst() }
        while let last = scalars.last, set.contains(last) { scalars = scalars.dropLast() }
        return String(scalars)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}
