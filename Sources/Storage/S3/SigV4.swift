import Crypto
import Foundation

/// Credentials for S3 requests. Its description never shows the secret or the session token.
public struct S3Credentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "S3Credentials(accessKeyID: <redacted>, secretAccessKey: <redacted>)" }
}

/// AWS Signature Version 4 for S3: the canonical request, the string to sign, the derived
/// signing key, and the `Authorization` header or a presigned URL.
///
/// S3 differs from other services in two ways this follows: the path is URI-encoded once
/// (not twice) with `/` kept, and every request carries `x-amz-content-sha256` (the payload's
/// SHA-256, or `UNSIGNED-PAYLOAD`).
public struct SigV4Signer: Sendable {
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public let credentials: S3Credentials
    public let region: String
    public let service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request to sign: method, host (with `:port` unless default), path (not yet encoded),
    /// query parameters (not yet encoded), headers (any case).
    public struct Request: Sendable {
        public var method: String
        public var host: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]

        public init(method: String, host: String, path: String, query: [(String, String)] = [], headers: [(String, String)] = []) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// The headers to send: the request's, plus `host`, `x-amz-date`, `x-amz-content-sha256`,
    /// `x-amz-security-token` (when there is a session token) and `authorization`.
    public func signedHeaders(for request: Request, payloadHash: String, date: Date) -> [(String, String)] {
        let timestamp = Self.timestamp(date)
        var headers = request.headers.filter { name, _ in
            !["authorization", "x-amz-date", "x-amz-content-sha256", "host"].contains(name.lowercased())
        }
        headers.append(("host", request.host))
        headers.append(("x-amz-date", timestamp))
        headers.append(("x-amz-content-sha256", payloadHash))
        if let token = credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        let (canonicalHeaders, signedNames) = Self.canonicalHeaders(headers)
        let canonicalRequest = [
            request.method, Self.encodePath(request.path), Self.canonicalQuery(request.query),
            canonicalHeaders, signedNames, payloadHash,
        ].joined(separator: "\n")
        let scope = "\(timestamp.prefix(8))/\(region)/\(service)/aws4_request"
        let signature = sign(canonicalRequest: canonicalRequest, timestamp: timestamp, scope: scope)
        headers.append(("authorization", "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedNames), Signature=\(signature)"))
        return headers
    }

    /// A presigned URL (query-string authentication) valid for `expires` seconds.
    public func presignedURL(for request: Request, scheme: String = "https", expires: Int, date: Date) -> String {
        let timestamp = Self.timestamp(date)
        let scope = "\(timestamp.prefix(8))/\(region)/\(service)/aws4_request"
        var query = request.query
        query.append(("X-Amz-Algorithm", "AWS4-HMAC-SHA256"))
        query.append(("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope)"))
        query.append(("X-Amz-Date", timestamp))
        query.append(("X-Amz-Expires", String(expires)))
        if let token = credentials.sessionToken { query.append(("X-Amz-Security-Token", token)) }
        let headers = request.headers + [("host", request.host)]
        let (canonicalHeaders, signedNames) = Self.canonicalHeaders(headers)
        query.append(("X-Amz-SignedHeaders", signedNames))
        let canonicalRequest = [
            request.method, Self.encodePath(request.path), Self.canonicalQuery(query),
            canonicalHeaders, signedNames, Self.unsignedPayload,
        ].joined(separator: "\n")
        let signature = sign(canonicalRequest: canonicalRequest, timestamp: timestamp, scope: scope)
        return "\(scheme)://\(request.host)\(Self.encodePath(request.path))?\(Self.canonicalQuery(query))&X-Amz-Signature=\(signature)"
    }

    private func sign(canonicalRequest: String, timestamp: String, scope: String) -> String {
        let stringToSign = [
            "AWS4-HMAC-SHA256", timestamp, scope, Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for component in [String(timestamp.prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(component.utf8), using: key)))
        }
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
    }

    // MARK: Canonical forms

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`),
    /// optionally keeping `/`.
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var encoded = ""
        for byte in text.utf8 {
            if unreserved[Int(byte)] || (keepSlash && byte == 0x2F) {
                encoded.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                encoded += String(format: "%%%02X", byte)
            }
        }
        return encoded
    }

    private static let unreserved: [Bool] = (0..<256).map { value in
        let scalar = UnicodeScalar(UInt8(value))
        return ("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
            || scalar == "-" || scalar == "." || scalar == "_" || scalar == "~"
    }

    static func encodePath(_ path: String) -> String {
        path.isEmpty ? "/" : uriEncode(path, keepSlash: true)
    }

    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { pair in
            (uriEncode(pair.0, keepSlash: false), uriEncode(pair.1, keepSlash: false))
        }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return sorted.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
    }

    static func canonicalHeaders(_ headers: [(String, String)]) -> (String, String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let collapsed = value.trimmingCharacters(in: .whitespaces)
                .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[name.lowercased(), default: []].append(collapsed)
        }
        let names = merged.keys.sorted()
        let canonical = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (canonical, names.joined(separator: ";"))
    }

    public static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
