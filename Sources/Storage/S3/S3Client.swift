import ClientTLS

import AsyncHTTPClient
import Crypto
import Waiting
import Foundation
import Logging
import S3Names
import S3Responses
import Timestamps
import NIOCore
import NIOHTTP1
import NIOSSL

/// Where the bucket lives and how to reach it.
public struct S3Configuration: Sendable {
    public var region: String
    /// What every object this client writes gets: server-side encryption and storage class.
    public var writeSettings = S3WriteSettings()
    /// Base URL of an S3-compatible endpoint (`https://minio.example.com`); nil means AWS.
    public var endpoint: String?
    /// `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint>/<key>`; default: true with
    /// a custom endpoint, false for AWS.
    public var forcePathStyle: Bool?
    /// PEM CA certificates to trust instead of the system's.
    public var caBundlePEM: [UInt8]?
    /// Skip certificate verification: only when asked, and logged as a warning.
    public var insecureSkipTLSVerify: Bool
    /// What signs the requests: a fixed key pair, or a source that renews (``AmbientCredentials``).
    public var credentials: any S3CredentialSource
    /// A role to assume with ``credentials`` (STS AssumeRole) and sign with instead.
    public var assumeRole: S3AssumeRole?
    /// Timeout of one request.
    public var requestTimeout: Duration
    /// Attempts for a retryable failure (throttling, 5xx, dropped connections), first included.
    public var maxAttempts: Int
    /// First retry delay; doubles each attempt, with full jitter.
    public var retryBaseDelay: Duration

    public init(
        region: String, endpoint: String? = nil, forcePathStyle: Bool? = nil, caBundlePEM: [UInt8]? = nil,
        insecureSkipTLSVerify: Bool = false, credentials: any S3CredentialSource, requestTimeout: Duration = .seconds(300),
        maxAttempts: Int = 5, retryBaseDelay: Duration = .milliseconds(200)
    ) {
        self.region = region
        self.endpoint = endpoint
        self.forcePathStyle = forcePathStyle
        self.caBundlePEM = caBundlePEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.credentials = credentials
        self.requestTimeout = requestTimeout
        self.maxAttempts = maxAttempts
        self.retryBaseDelay = retryBaseDelay
    }
}

/// A role the client assumes before it signs anything: the credentials it was given only call
/// STS AssumeRole (at the custom endpoint when there is one, else AWS STS of the region), and
/// the role's temporary credentials, renewed before they expire, sign the S3 requests.
public struct S3AssumeRole: Sendable, Equatable {
    public var roleARN: String
    /// `[A-Za-z0-9+=,.@-]{2,64}` (``SecurityTokenService/sessionName(_:)`` makes one).
    public var sessionName: String
    /// What the role's trust policy can require (`sts:ExternalId`).
    public var externalID: String?

    public init(roleARN: String, sessionName: String, externalID: String? = nil) {
        self.roleARN = roleARN
        self.sessionName = sessionName
        self.externalID = externalID
    }
}

/// What HeadObject tells about an object.
public struct S3ObjectInfo: Sendable, Equatable {
    public var size: Int64
    public var etag: String
    public var metadata: [String: String]
    /// The Last-Modified header as the server sent it (an HTTP date).
    public var lastModified: String?
    /// `x-amz-server-side-encryption` (`AES256`, `aws:kms`) and its KMS key, as the server says.
    public var serverSideEncryption: String? = nil
    public var kmsKeyID: String? = nil
    /// `x-amz-storage-class`; S3 leaves it out for STANDARD.
    public var storageClass: String? = nil
    /// `x-amz-version-id`: the version HEAD described, in a versioned bucket (Object Lock
    /// buckets are).
    public var versionID: String? = nil
    /// Object Lock as the server reports it (AWS only to a caller allowed
    /// `s3:GetObjectRetention` and `s3:GetObjectLegalHold`): `x-amz-object-lock-mode`,
    /// `x-amz-object-lock-retain-until-date` as sent, and whether a legal hold is on.
    public var objectLockMode: String? = nil
    public var objectLockRetainUntil: String? = nil
    public var objectLockLegalHold = false

    public init(size: Int64, etag: String, metadata: [String: String], lastModified: String? = nil) {
        self.size = size
        self.etag = etag
        self.metadata = metadata
        self.lastModified = lastModified
    }

    init(size: Int64, etag: String, metadata: [String: String], lastModified: String?, serverSideEncryption: String?, kmsKeyID: String?,
         storageClass: String?, versionID: String?, objectLockMode: String?, objectLockRetainUntil: String?, objectLockLegalHold: Bool) {
        self.init(size: size, etag: etag, metadata: metadata, lastModified: lastModified)
        self.serverSideEncryption = serverSideEncryption
        self.kmsKeyID = kmsKeyID
        self.storageClass = storageClass
        self.versionID = versionID
        self.objectLockMode = objectLockMode
        self.objectLockRetainUntil = objectLockRetainUntil
        self.objectLockLegalHold = objectLockLegalHold
    }

    /// The retention date, when the server sent one this client can read.
    public var retainUntilDate: Date? { objectLockRetainUntil.flatMap(RFC3339.parse) }

    /// Whether the store refuses to delete this version at `now`: a legal hold, or a retention
    /// that ends after `now`. A retention whose date cannot be read counts as holding: a lock
    /// is never assumed to have expired.
    public func isLocked(at now: Date) -> Bool {
        if objectLockLegalHold { return true }
        guard objectLockMode != nil || objectLockRetainUntil != nil else { return false }
        guard let until = retainUntilDate else { return true }
        return until > now
    }
}

/// Server-side encryption and storage class for every object a client writes: PutObject,
/// CreateMultipartUpload and the copy that records an object's metadata (a copy gets the
/// bucket's defaults otherwise, not the source's settings). Validated where they come from
/// (the CRD); here they are header values.
public struct S3WriteSettings: Sendable, Equatable {
    /// SSE-S3 (`AES256`), SSE-KMS (`aws:kms`, optionally with a key: an ID, ARN or alias), or
    /// SSE-C (a 256-bit key of the customer's, which the store uses and forgets: every request
    /// that writes or reads the object's bytes, HEAD included, must carry it).
    public enum ServerSideEncryption: Sendable, Equatable, CustomStringConvertible {
        case aes256
        case kms(keyID: String?)
        case customerKey(CustomerKey)

        /// `AES256`, `aws:kms` or `SSE-C`: what a status and an object's record say (never a key).
        public var mode: String {
            switch self {
            case .aes256: "AES256"
            case .kms: "aws:kms"
            case .customerKey: "SSE-C"
            }
        }

        public var description: String { mode }
    }

    /// An SSE-C key: 32 bytes. Its description never shows them.
    public struct CustomerKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        let bytes: [UInt8]

        /// Nil unless `bytes` are 32.
        public init?(_ bytes: [UInt8]) {
            guard bytes.count == 32 else { return nil }
            self.bytes = bytes
        }

        /// A key as it is kept in a file or a Secret: the 32 bytes themselves, or their base64
        /// (`openssl rand -base64 32`), surrounding white space ignored; nil for anything else.
        public init?(stored bytes: [UInt8]) {
            if bytes.count == 32 {
                self.bytes = bytes
                return
            }
            guard bytes.count <= 1024,
                  let decoded = Data(base64Encoded: String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                  decoded.count == 32 else { return nil }
            self.bytes = Array(decoded)
        }

        public var description: String { "CustomerKey(<redacted>)" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: [:]) }

        /// The three headers that carry it, with `prefix` (`x-amz-` for the object,
        /// `x-amz-copy-source-` for a copy's source).
        func headers(prefix: String) -> [(String, String)] {
            [("\(prefix)server-side-encryption-customer-algorithm", "AES256"),
             ("\(prefix)server-side-encryption-customer-key", Data(bytes).base64EncodedString()),
             ("\(prefix)server-side-encryption-customer-key-MD5", Data(Insecure.MD5.hash(data: bytes)).base64EncodedString())]
        }
    }

    /// S3 Object Lock: every object written is kept from deletion and overwriting, by anyone
    /// (`COMPLIANCE`) or by anyone without `s3:BypassGovernanceRetention` (`GOVERNANCE`),
    /// until a date `retention` after the write. The bucket must have been created with Object
    /// Lock (which makes it versioned). S3 wants a checksum with such a write: PutObject sends
    /// `x-amz-checksum-sha256` with `x-amz-sdk-checksum-algorithm`, as the AWS SDKs do.
    public struct ObjectLock: Sendable, Equatable {
        public enum Mode: String, Sendable, CaseIterable {
            case governance = "GOVERNANCE"
            case compliance = "COMPLIANCE"
        }

        public var mode: Mode
        /// How long after each write its object stays locked.
        public var retention: Duration

        public init(mode: Mode, retainDays: Int) {
            self.mode = mode
            self.retention = .seconds(Int64(max(0, min(retainDays, 36_500))) * 86_400)
        }

        /// A retention of any length: tests lock objects for seconds.
        public init(mode: Mode, retention: Duration) {
            self.mode = mode
            self.retention = retention
        }

        /// How much earlier than asked a lock the store set may end and still count: the time
        /// between a write and the check after it (ten minutes, at most half the retention).
        var tolerance: TimeInterval { min(600, Double(retention.components.seconds) / 2) }

        /// Whether `object` is locked at least as asked at `now`: in this mode (or compliance,
        /// which is stronger), until at least `retention` after `now` less ``tolerance``. A
        /// legal hold alone, a date that cannot be read, or a shorter or weaker lock is not.
        public func isSatisfied(by object: S3ObjectInfo, at now: Date) -> Bool {
            guard object.objectLockMode == mode.rawValue || object.objectLockMode == Mode.compliance.rawValue,
                  let until = object.retainUntilDate else { return false }
            return until >= retainUntil(writtenAt: now).addingTimeInterval(-tolerance)
        }

        /// The retention date of an object written at `now`: `retention` later, rounded up to
        /// the second (the header carries whole seconds).
        public func retainUntil(writtenAt now: Date) -> Date {
            let seconds = Double(retention.components.seconds) + Double(retention.components.attoseconds) / 1e18
            return Date(timeIntervalSince1970: (now.timeIntervalSince1970 + seconds).rounded(.up))
        }
    }

    public var serverSideEncryption: ServerSideEncryption?
    /// `STANDARD`, `STANDARD_IA`, `GLACIER_IR`, ...; nil: the bucket's default.
    public var storageClass: String?
    public var objectLock: ObjectLock?

    public init(serverSideEncryption: ServerSideEncryption? = nil, storageClass: String? = nil, objectLock: ObjectLock? = nil) {
        self.serverSideEncryption = serverSideEncryption
        self.storageClass = storageClass
        self.objectLock = objectLock
    }

    /// The request headers that say so, for a write at the time of the call.
    var headers: [(String, String)] {
        var headers: [(String, String)] = []
        if let objectLock {
            headers.append(("x-amz-object-lock-mode", objectLock.mode.rawValue))
            headers.append(("x-amz-object-lock-retain-until-date", RFC3339.format(objectLock.retainUntil(writtenAt: Date()))))
        }
        switch serverSideEncryption {
        case .aes256: headers.append(("x-amz-server-side-encryption", "AES256"))
        case .kms(let keyID):
            headers.append(("x-amz-server-side-encryption", "aws:kms"))
            if let keyID { headers.append(("x-amz-server-side-encryption-aws-kms-key-id", keyID)) }
        case .customerKey(let key): headers += key.headers(prefix: "x-amz-")
        case nil: break
        }
        if let storageClass { headers.append(("x-amz-storage-class", storageClass)) }
        return headers
    }

    /// What a request that reads or adds to an object's bytes (GET, HEAD, UploadPart) carries:
    /// the SSE-C key, if any; nothing for the other modes.
    var objectKeyHeaders: [(String, String)] {
        if case .customerKey(let key) = serverSideEncryption { key.headers(prefix: "x-amz-") } else { [] }
    }

    /// What a copy carries about its source: the SSE-C key it was written with.
    var copySourceKeyHeaders: [(String, String)] {
        if case .customerKey(let key) = serverSideEncryption { key.headers(prefix: "x-amz-copy-source-") } else { [] }
    }
}

/// A client for the S3 operations this project needs, over async-http-client, signing every
/// request with SigV4. Retryable failures (throttling, 5xx, dropped connections) are retried
/// with exponential backoff and full jitter; errors are ``S3Error``s that say what to fix.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    private let http: HTTPClient
    private let credentials: any S3CredentialSource
    private let logger: Logger

    public init(configuration: S3Configuration, logger: Logger = Logger(label: "s3")) throws {
        guard S3Names.isValidRegion(configuration.region) else {
            throw S3Error(code: "InvalidRegion", message: "the region must be \(S3Names.regionRule)",
                          statusCode: 0, operation: "configure", bucket: "", key: nil, region: String(configuration.region.prefix(64)))
        }
        self.configuration = configuration
        self.logger = logger
        let tls: TLSConfiguration
        do {
            tls = try ClientTLS.configuration(source: "S3 endpoint", trust: configuration.caBundlePEM.map { PEMField(field: "CA bundle", pem: $0) },
                                              insecureSkipVerify: configuration.insecureSkipTLSVerify)
        } catch {
            throw S3Error(code: "InvalidCABundle", message: "the CA bundle is not PEM certificates", statusCode: 0,
                          operation: "configure", bucket: "", key: nil, region: configuration.region)
        }
        if configuration.insecureSkipTLSVerify {
            logger.warning("TLS certificate verification of the S3 endpoint is disabled (insecureSkipTLSVerify)")
        }
        var httpConfiguration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                         timeout: .init(connect: .seconds(10)))
        httpConfiguration.httpVersion = .http1Only
        httpConfiguration.decompression = .disabled
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfiguration)
        self.http = http
        if let role = configuration.assumeRole {
            let base = configuration.credentials
            let sts = SecurityTokenService(endpoint: configuration.endpoint ?? SecurityTokenService.awsEndpoint(region: configuration.region),
                                           region: configuration.region, http: http, timeout: min(configuration.requestTimeout, .seconds(10)))
            self.credentials = RenewingCredentials {
                try await sts.assumeRole(roleARN: role.roleARN, sessionName: role.sessionName, externalID: role.externalID,
                                         credentials: try await base.credentials())
            }
        } else {
            self.credentials = configuration.credentials
        }
    }

    /// Runs `body` with a client for `configuration` and shuts the client down afterwards,
    /// whether `body` returns or throws.
    public static func withClient<T: Sendable>(_ configuration: S3Configuration, logger: Logger = Logger(label: "s3"),
                                               _ body: (S3Client) async throws -> T) async throws -> T {
        let client = try S3Client(configuration: configuration, logger: logger)
        do {
            let result = try await body(client)
            try? await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: Addressing

    struct Location {
        var scheme: String
        var host: String  // with :port when not the default
        var path: String  // not yet encoded
    }

    func location(bucket: String, key: String?) -> Location {
        let address = Self.address(configuration, bucket: bucket)
        let path = address.pathStyle ? "/\(bucket)" + (key.map { "/" + $0 } ?? "") : key.map { "/" + $0 } ?? "/"
        let host = address.host.contains(":") ? "[\(address.host)]" : address.host
        return Location(scheme: address.scheme, host: host + (address.port.map { ":\($0)" } ?? ""), path: path)
    }

    /// The host (without port or brackets) every request about `bucket` goes to under
    /// `configuration`: what an endpoint policy must judge, `<bucket>.<endpoint host>` when
    /// addressing is virtual-hosted.
    public static func requestHost(_ configuration: S3Configuration, bucket: String) -> String {
        address(configuration, bucket: bucket).host
    }

    /// Where requests about `bucket` go: a custom endpoint path-style unless `forcePathStyle`
    /// is false; AWS virtual-hosted in the region, path-style when asked or when the bucket has
    /// dots (they break the `*.s3` wildcard certificate).
    private static func address(_ configuration: S3Configuration, bucket: String) -> (scheme: String, host: String, port: Int?, pathStyle: Bool) {
        if let endpoint = configuration.endpoint, let url = URLComponents(string: endpoint), let host = url.host {
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            let pathStyle = configuration.forcePathStyle ?? true
            return (url.scheme ?? "https", pathStyle ? bare : "\(bucket).\(bare)", url.port, pathStyle)
        }
        let regional = "s3.\(configuration.region).amazonaws.com"
        let pathStyle = configuration.forcePathStyle ?? false || bucket.contains(".")
        return ("https", pathStyle ? regional : "\(bucket).\(regional)", nil, pathStyle)
    }

    /// The URL of an object (or, without a key, of its bucket), without a query.
    public func objectURL(bucket: String, key: String?) -> String {
        let target = location(bucket: bucket, key: key)
        return "\(target.scheme)://\(target.host)\(SigV4Signer.encodePath(target.path))"
    }

    // MARK: Operations

    /// PutObject of a body held in memory; returns the ETag. The body's SHA-256, computed once,
    /// is both the SigV4 payload hash and the `x-amz-checksum-sha256` S3 verifies on arrival.
    /// With `ifNoneMatch`, only if no object exists at the key (`If-None-Match: *`): a store that
    /// supports conditional writes answers PreconditionFailed instead of overwriting.
    @discardableResult
    public func putObject(bucket: String, key: String, body: ByteBuffer, metadata: [String: String] = [:], ifNoneMatch: Bool = false) async throws -> String {
        let digest = PayloadDigest(body)
        var headers = metadataHeaders(metadata) + configuration.writeSettings.headers + [("x-amz-checksum-sha256", digest.base64)]
        // What S3 wants with a locked write, which a bucket's default retention makes of any.
        headers.append(("x-amz-sdk-checksum-algorithm", "SHA256"))
        if ifNoneMatch { headers.append(("If-None-Match", "*")) }
        let response = try await send("PutObject", "PUT", bucket: bucket, key: key, headers: headers, body: body, payloadHash: digest.hex)
        return response.headers.first(name: "ETag") ?? ""
    }

    /// Starts a multipart upload with SHA-256 part checksums; returns its upload ID.
    public func createMultipartUpload(bucket: String, key: String, metadata: [String: String] = [:]) async throws -> String {
        let headers = metadataHeaders(metadata) + configuration.writeSettings.headers + [("x-amz-checksum-algorithm", "SHA256")]
        let response = try await send("CreateMultipartUpload", "POST", bucket: bucket, key: key, query: [("uploads", "")], headers: headers)
        guard let id = S3Responses.uploadID(response.body) else { throw malformed("CreateMultipartUpload", bucket: bucket, key: key) }
        return id
    }

    /// An uploaded part: what CompleteMultipartUpload must list.
    public struct UploadedPart: Sendable, Equatable {
        public var number: Int
        public var etag: String
        /// Base64 SHA-256 of the part, which S3 checked on arrival.
        public var checksumSHA256: String
    }

    /// Uploads one part (numbered from 1). Its SHA-256 is computed once and serves as the
    /// SigV4 payload hash and as the `x-amz-checksum-sha256` S3 verifies.
    public func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: ByteBuffer) async throws -> UploadedPart {
        let digest = PayloadDigest(body)
        let response = try await send("UploadPart", "PUT", bucket: bucket, key: key,
                                      query: [("partNumber", String(partNumber)), ("uploadId", uploadID)],
                                      headers: [("x-amz-checksum-sha256", digest.base64)] + configuration.writeSettings.objectKeyHeaders,
                                      body: body, payloadHash: digest.hex)
        guard let etag = response.headers.first(name: "ETag") else { throw malformed("UploadPart", bucket: bucket, key: key) }
        return UploadedPart(number: partNumber, etag: etag, checksumSHA256: digest.base64)
    }

    /// A body's SHA-256, in the two spellings S3 wants: hex for the signature, base64 for the
    /// checksum header.
    struct PayloadDigest {
        var hex: String
        var base64: String

        init(_ body: ByteBuffer) {
            let digest = body.withUnsafeReadableBytes { SHA256.hash(data: $0) }
            hex = SigV4Signer.hex(digest)
            base64 = Data(digest).base64EncodedString()
        }
    }

    /// Completes a multipart upload from its parts; returns the object's ETag.
    /// With `ifNoneMatch`, only if no object exists at the key (`If-None-Match: *`; AWS and
    /// moto honour it, Ceph RGW 16 ignores it on this call).
    public func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [UploadedPart], ifNoneMatch: Bool = false) async throws -> String {
        let xml = S3Responses.completeMultipartUploadDocument(parts.map {
            S3Responses.CompletedPart(number: $0.number, etag: $0.etag, checksumSHA256: $0.checksumSHA256)
        })
        // SSE-C with part checksums: S3 wants the key on the completion too (Velero forgot it,
        // vmware-tanzu/velero#7693).
        var headers = [("Content-Type", "application/xml")] + configuration.writeSettings.objectKeyHeaders
        if ifNoneMatch { headers.append(("If-None-Match", "*")) }
        let response = try await send("CompleteMultipartUpload", "POST", bucket: bucket, key: key, query: [("uploadId", uploadID)],
                                      headers: headers, body: ByteBuffer(string: xml))
        return try resultETag(response, "CompleteMultipartUpload", bucket: bucket, key: key)
    }

    public func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        _ = try await send("AbortMultipartUpload", "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadID)])
    }

    /// In-progress multipart uploads under `prefix`, every page (following `key-marker` and
    /// `upload-id-marker`, bounded as ``collectPages(_:bucket:prefix:limit:_:)`` says).
    public func listMultipartUploads(bucket: String, prefix: String? = nil) async throws -> [S3MultipartUploadInfo] {
        try await collectPages("ListMultipartUploads", bucket: bucket, prefix: prefix) { (markers: S3Responses.UploadMarkers?) in
            var query = [("uploads", "")]
            if let prefix { query.append(("prefix", prefix)) }
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadID)] }
            let response = try await send("ListMultipartUploads", "GET", bucket: bucket, key: nil, query: query)
            guard let page = S3Responses.multipartUploadsPage(response.body) else { throw malformed("ListMultipartUploads", bucket: bucket, key: nil) }
            return (page.uploads, page.next)
        }
    }

    /// How many entries a listing may collect, and how many pages it may take: a bound on the
    /// memory and the time one listing can cost, whatever the server answers.
    public static let maximumListingEntries = 100_000
    public static let maximumListingPages = 1_000

    /// Follows a paged listing from its first page (`page(nil)`) until a page has no next
    /// marker. A server that answers a marker that does not advance (the same as the one asked
    /// with) would be followed forever: that is an error, and so is a listing longer than
    /// ``maximumListingPages`` pages or ``maximumListingEntries`` entries.
    private func collectPages<Marker: Equatable, Item>(
        _ operation: String, bucket: String, prefix: String?, limit: Int = maximumListingEntries,
        _ page: (Marker?) async throws -> (items: [Item], next: Marker?)
    ) async throws -> [Item] {
        var all: [Item] = []
        var marker: Marker?
        for _ in 0..<Self.maximumListingPages {
            let (items, next) = try await page(marker)
            all += items
            guard all.count <= limit else {
                throw S3Error(code: "ListingTooLong", message: "more than \(limit) entries under prefix \"\(prefix ?? "")\"",
                              statusCode: 200, operation: operation, bucket: bucket, key: nil, region: configuration.region)
            }
            guard let next else { return all }
            guard next != marker else {
                throw S3Error(code: "MalformedResponse", message: "the listing did not advance: the server answered the marker it was asked for",
                              statusCode: 200, operation: operation, bucket: bucket, key: nil, region: configuration.region)
            }
            marker = next
        }
        throw S3Error(code: "ListingTooLong", message: "more than \(Self.maximumListingPages) pages under prefix \"\(prefix ?? "")\"",
                      statusCode: 200, operation: operation, bucket: bucket, key: nil, region: configuration.region)
    }

    /// In-progress multipart uploads of exactly `key`. The listing asks for the key's first
    /// path segment as prefix and filters: some S3-compatible servers (moto among them) reject
    /// the signature of a query value containing `/`, and a segment never contains one.
    public func multipartUploads(bucket: String, key: String) async throws -> [S3MultipartUploadInfo] {
        let segment = String(key.prefix { $0 != "/" })
        return try await listMultipartUploads(bucket: bucket, prefix: segment.isEmpty ? nil : segment).filter { $0.key == key }
    }

    /// HeadObject (of one version, when `versionID` is given): size, ETag, `x-amz-meta-*`
    /// metadata, encryption and Object Lock; throws `.noSuchKey` when absent.
    public func headObject(bucket: String, key: String, versionID: String? = nil) async throws -> S3ObjectInfo {
        let response = try await send("HeadObject", "HEAD", bucket: bucket, key: key, query: versionID.map { [("versionId", $0)] } ?? [],
                                      headers: configuration.writeSettings.objectKeyHeaders)
        var metadata: [String: String] = [:]
        for header in response.headers where header.name.lowercased().hasPrefix("x-amz-meta-") {
            metadata[String(header.name.lowercased().dropFirst("x-amz-meta-".count))] = header.value
        }
        return S3ObjectInfo(size: Int64(response.headers.first(name: "Content-Length") ?? "0") ?? 0,
                            etag: response.headers.first(name: "ETag") ?? "", metadata: metadata,
                            lastModified: response.headers.first(name: "Last-Modified"),
                            serverSideEncryption: response.headers.first(name: "x-amz-server-side-encryption-customer-algorithm").map { _ in "SSE-C" }
                                ?? response.headers.first(name: "x-amz-server-side-encryption"),
                            kmsKeyID: response.headers.first(name: "x-amz-server-side-encryption-aws-kms-key-id"),
                            storageClass: response.headers.first(name: "x-amz-storage-class"),
                            versionID: response.headers.first(name: "x-amz-version-id"),
                            objectLockMode: response.headers.first(name: "x-amz-object-lock-mode"),
                            objectLockRetainUntil: response.headers.first(name: "x-amz-object-lock-retain-until-date"),
                            objectLockLegalHold: response.headers.first(name: "x-amz-object-lock-legal-hold") == "ON")
    }

    /// GetObject, streamed: the body arrives as it downloads. A body that breaks off is an
    /// ``S3Error`` (``S3Error/Kind/incompleteDownload``) naming the object and how far it got.
    public func getObject(bucket: String, key: String) async throws -> (size: Int64?, body: S3ObjectBody) {
        let (status, headers, body) = try await sendStreaming("GetObject", "GET", bucket: bucket, key: key,
                                                              headers: configuration.writeSettings.objectKeyHeaders)
        _ = status
        let size = headers.first(name: "Content-Length").flatMap { Int64($0) }
        return (size, S3ObjectBody(body: body, size: size) { received, error in
            S3Error(code: "IncompleteDownload", message: "it broke off after \(received)\(size.map { " of \($0)" } ?? "") bytes (\(error))",
                    statusCode: 0, operation: "GetObject", bucket: bucket, key: key, region: self.configuration.region)
        })
    }

    /// Replaces the `x-amz-meta-*` metadata of an object in place. S3 fixes metadata when an
    /// object is created (a multipart upload's before its first byte), so facts known only at
    /// the end (a streamed object's hash) are recorded by copying the object onto itself with
    /// `x-amz-metadata-directive: REPLACE`; the bytes stay as they are. Objects over `partSize`
    /// are copied in ranges of `partSize` by UploadPartCopy, which S3 requires above 5 GiB and
    /// which keeps every request short (and for SSE-C objects always); a failed part copy aborts
    /// its upload. (No
    /// `x-amz-copy-source-if-match`: moto and Ceph RGW 16 ignore it, so it could not be tested.)
    /// Returns the new ETag.
    @discardableResult
    public func replaceMetadata(bucket: String, key: String, size: Int64, metadata: [String: String],
                                partSize: Int64 = 1024 * 1024 * 1024) async throws -> String {
        let source = ("x-amz-copy-source", SigV4Signer.encodePath("/\(bucket)/\(key)"))
        // An SSE-C object is copied in parts whatever its size: Ceph RGW 16 answers CopyObject
        // of one with NotImplemented, and takes UploadPartCopy (so does S3).
        let customerKey = configuration.writeSettings.objectKeyHeaders.isEmpty == false
        if size <= partSize, !customerKey || size == 0 {
            // The copy gets a full-object SHA-256 checksum of its own: a multipart source's
            // composite one does not describe it (moto copies it anyway, and boto3 then refuses
            // the download).
            var headers = [source, ("x-amz-metadata-directive", "REPLACE"), ("x-amz-checksum-algorithm", "SHA256")] + metadataHeaders(metadata)
                + configuration.writeSettings.headers + configuration.writeSettings.copySourceKeyHeaders
            // What S3 wants with a locked write (a bucket's default retention makes any copy one):
            // a copy has no body to give a checksum of, so the MD5 of that empty body.
            headers.append(("Content-MD5", Data(Insecure.MD5.hash(data: Data())).base64EncodedString()))
            let response = try await send("CopyObject", "PUT", bucket: bucket, key: key, headers: headers)
            return try resultETag(response, "CopyObject", bucket: bucket, key: key)
        }
        let uploadID = try await send("CreateMultipartUpload", "POST", bucket: bucket, key: key, query: [("uploads", "")],
                                      headers: metadataHeaders(metadata) + configuration.writeSettings.headers).body
        guard let id = S3Responses.uploadID(uploadID) else { throw malformed("CreateMultipartUpload", bucket: bucket, key: key) }
        do {
            var parts: [S3Responses.CompletedPart] = []
            var offset: Int64 = 0
            var number = 1
            while offset < size {
                let end = min(offset + partSize, size) - 1
                let response = try await send("UploadPartCopy", "PUT", bucket: bucket, key: key,
                                              query: [("partNumber", String(number)), ("uploadId", id)],
                                              headers: [source, ("x-amz-copy-source-range", "bytes=\(offset)-\(end)")]
                                                + configuration.writeSettings.objectKeyHeaders + configuration.writeSettings.copySourceKeyHeaders)
                let partETag = try resultETag(response, "UploadPartCopy", bucket: bucket, key: key)
                parts.append(S3Responses.CompletedPart(number: number, etag: partETag))
                offset = end + 1
                number += 1
            }
            let xml = S3Responses.completeMultipartUploadDocument(parts)
            let response = try await send("CompleteMultipartUpload", "POST", bucket: bucket, key: key, query: [("uploadId", id)],
                                          headers: [("Content-Type", "application/xml")] + configuration.writeSettings.objectKeyHeaders,
                                          body: ByteBuffer(string: xml))
            return try resultETag(response, "CompleteMultipartUpload", bucket: bucket, key: key)
        } catch {
            try? await abortMultipartUpload(bucket: bucket, key: key, uploadID: id)
            throw error
        }
    }

    /// The ETag in a copy's or a completion's answer. S3 can answer these 200 with an `<Error>`
    /// document when they fail late.
    private func resultETag(_ response: Response, _ operation: String, bucket: String, key: String) throws -> String {
        switch S3Responses.result(response.body) {
        case nil: throw malformed(operation, bucket: bucket, key: key)
        case .error(let code, let message):
            throw S3Error(code: code ?? "InternalError", message: message ?? "", statusCode: 200,
                          operation: operation, bucket: bucket, key: key, region: configuration.region)
        case .etag(let etag): return etag
        }
    }

    /// `versionID` of `key` (the current version when nil) under this client's Object Lock, as
    /// HEAD then reports it. S3 locks an object as it is written (the lock headers of
    /// PutObject, CreateMultipartUpload and CopyObject); moto and Ceph RGW 16 apply them only
    /// to PutObject, so a version that comes out unlocked, or locked for less than asked
    /// (``S3WriteSettings/ObjectLock/isSatisfied(by:at:)``), gets its retention set afterwards
    /// (PutObjectRetention on that version). That never weakens a lock: a compliance-mode one
    /// stays compliance, and a later date than asked is kept. The caller checks what is
    /// returned: a store that takes neither leaves it unlocked. Throws `.noSuchKey` when there
    /// is no object.
    public func lockedVersion(bucket: String, key: String, versionID: String? = nil) async throws -> S3ObjectInfo {
        let current = try await headObject(bucket: bucket, key: key, versionID: versionID)
        let now = Date()
        guard let lock = configuration.writeSettings.objectLock, !lock.isSatisfied(by: current, at: now) else { return current }
        guard let version = current.versionID else { return current }  // an unversioned bucket cannot lock
        let compliance = S3WriteSettings.ObjectLock.Mode.compliance.rawValue
        let mode = current.objectLockMode == compliance ? compliance : lock.mode.rawValue
        let until = max(lock.retainUntil(writtenAt: now), current.retainUntilDate ?? .distantPast)
        let document = S3Responses.retentionDocument(mode: mode, retainUntil: RFC3339.format(until))
        _ = try await send("PutObjectRetention", "PUT", bucket: bucket, key: key, query: [("retention", ""), ("versionId", version)],
                           headers: [("Content-MD5", Data(Insecure.MD5.hash(data: Data(document.utf8))).base64EncodedString()),
                                     ("Content-Type", "application/xml")],
                           body: ByteBuffer(string: document))
        return try await headObject(bucket: bucket, key: key, versionID: version)
    }

    /// DeleteObject; deleting a missing object succeeds, as in S3. Without `versionID`, in a
    /// versioned bucket, that only adds a delete marker: the bytes stay as a noncurrent
    /// version. With it, that version goes for good, unless Object Lock holds it (refused
    /// with AccessDenied). Never asks to bypass a governance-mode lock.
    public func deleteObject(bucket: String, key: String, versionID: String? = nil) async throws {
        _ = try await send("DeleteObject", "DELETE", bucket: bucket, key: key, query: versionID.map { [("versionId", $0)] } ?? [])
    }

    /// Every version and delete marker of exactly `key` (ListObjectVersions with the key as
    /// prefix, filtered; every page, bounded as ``collectPages(_:bucket:prefix:limit:_:)``
    /// says, and by `limit` entries: more is `ListingTooLong`). An unversioned bucket lists its
    /// object as the one version `null`.
    public func objectVersions(bucket: String, key: String, limit: Int = maximumListingEntries) async throws -> [S3ObjectVersion] {
        try await collectPages("ListObjectVersions", bucket: bucket, prefix: key, limit: limit) { (markers: S3Responses.UploadMarkers?) in
            var query = [("versions", ""), ("prefix", key)]
            if let markers { query += [("key-marker", markers.key), ("version-id-marker", markers.uploadID)] }
            let response = try await send("ListObjectVersions", "GET", bucket: bucket, key: nil, query: query)
            guard let page = S3Responses.objectVersionsPage(response.body) else { throw malformed("ListObjectVersions", bucket: bucket, key: key) }
            return (page.versions, page.next)
        }.filter { $0.key == key }
    }

    /// One page of ListObjectsV2.
    public func listObjects(bucket: String, prefix: String? = nil, continuationToken: String? = nil, maxKeys: Int? = nil) async throws -> S3ObjectPage {
        var query = [("list-type", "2")]
        if let prefix { query.append(("prefix", prefix)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        if let maxKeys { query.append(("max-keys", String(maxKeys))) }
        let response = try await send("ListObjectsV2", "GET", bucket: bucket, key: nil, query: query)
        guard let page = S3Responses.objectsPage(response.body) else { throw malformed("ListObjectsV2", bucket: bucket, key: nil) }
        return page
    }

    /// Every object under `prefix`, following continuation tokens (bounded as
    /// ``collectPages(_:bucket:prefix:limit:_:)`` says).
    public func listAllObjects(bucket: String, prefix: String? = nil, pageSize: Int? = nil) async throws -> [S3ObjectSummary] {
        try await collectPages("ListObjectsV2", bucket: bucket, prefix: prefix) { (token: String?) in
            let page = try await listObjects(bucket: bucket, prefix: prefix, continuationToken: token, maxKeys: pageSize)
            return (page.objects, page.nextContinuationToken)
        }
    }

    /// HeadBucket: succeeds when the bucket exists and the credentials may use it.
    public func headBucket(bucket: String) async throws {
        _ = try await send("HeadBucket", "HEAD", bucket: bucket, key: nil)
    }

    // MARK: Transport

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
    }

    private func metadataHeaders(_ metadata: [String: String]) -> [(String, String)] {
        metadata.sorted { $0.key < $1.key }.map { ("x-amz-meta-\($0.key.lowercased())", $0.value) }
    }

    private func malformed(_ operation: String, bucket: String, key: String?) -> S3Error {
        S3Error(code: "MalformedResponse", message: "the server's answer could not be read", statusCode: 200,
                operation: operation, bucket: bucket, key: key, region: configuration.region)
    }

    /// `payloadHash`, when the caller has it, saves hashing the body again (on every retry).
    private func send(
        _ operation: String, _ method: String, bucket: String, key: String?, query: [(String, String)] = [],
        headers: [(String, String)] = [], body: ByteBuffer? = nil, payloadHash: String? = nil
    ) async throws -> Response {
        let payloadHash = payloadHash ?? body.map { PayloadDigest($0).hex } ?? SigV4Signer.emptyPayloadHash
        return try await withRetries(operation, bucket: bucket, key: key) {
            let response = try await self.execute(operation, method, bucket: bucket, key: key, query: query, headers: headers, body: body,
                                                  payloadHash: payloadHash)
            // AsyncHTTPClient's deadline ends with the response head: the body has its own.
            let data: ByteBuffer
            do {
                data = try await withDeadline(self.configuration.requestTimeout, "reading the \(operation) response") {
                    try await response.body.collect(upTo: 16 * 1024 * 1024)
                }
            } catch let timeout as DeadlineExceeded {
                throw S3Error(code: "ConnectionFailed", message: "\(timeout)", statusCode: 0, operation: operation, bucket: bucket, key: key,
                              region: self.configuration.region)
            }
            let status = Int(response.status.code)
            guard (200..<300).contains(status) else {
                throw self.error(operation, status: status, headers: response.headers, body: Data(data.readableBytesView), bucket: bucket, key: key)
            }
            return Response(status: status, headers: response.headers, body: Data(data.readableBytesView))
        }
    }

    private func sendStreaming(_ operation: String, _ method: String, bucket: String, key: String?,
                               headers: [(String, String)] = []) async throws -> (Int, HTTPHeaders, HTTPClientResponse.Body) {
        try await withRetries(operation, bucket: bucket, key: key) {
            let response = try await self.execute(operation, method, bucket: bucket, key: key, query: [], headers: headers, body: nil,
                                                  payloadHash: SigV4Signer.emptyPayloadHash)
            let status = Int(response.status.code)
            guard (200..<300).contains(status) else {
                let data = try await response.body.collect(upTo: 1024 * 1024)
                throw self.error(operation, status: status, headers: response.headers, body: Data(data.readableBytesView), bucket: bucket, key: key)
            }
            return (status, response.headers, response.body)
        }
    }

    private func execute(
        _ operation: String, _ method: String, bucket: String, key: String?, query: [(String, String)],
        headers: [(String, String)], body: ByteBuffer?, payloadHash: String
    ) async throws -> HTTPClientResponse {
        let target = location(bucket: bucket, key: key)
        let signer = SigV4Signer(credentials: try await credentials.credentials(), region: configuration.region)
        let signed = signer.signedHeaders(
            for: .init(method: method, host: target.host, path: target.path, query: query, headers: headers),
            payloadHash: payloadHash, date: Date())
        let queryString = SigV4Signer.canonicalQuery(query)
        var request = HTTPClientRequest(url: objectURL(bucket: bucket, key: key) + (queryString.isEmpty ? "" : "?\(queryString)"))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in signed where name != "host" { request.headers.add(name: name, value: value) }
        if let body {
            request.body = .bytes(body)
        }
        do {
            return try await http.execute(request, deadline: .now() + .init(configuration.requestTimeout), logger: nil)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw S3Error(code: "ConnectionFailed", message: "\(error)", statusCode: 0, operation: operation, bucket: bucket, key: key, region: configuration.region)
        }
    }

    private func error(_ operation: String, status: Int, headers: HTTPHeaders, body: Data, bucket: String, key: String?) -> S3Error {
        let document = S3Responses.errorDocument(body)
        let fallback: String = switch status {
        case 404: key == nil || operation == "HeadBucket" ? "NoSuchBucket" : "NoSuchKey"
        case 403: "AccessDenied"
        case 412: "PreconditionFailed"
        case 429: "SlowDown"
        case 503: "SlowDown"
        default: status >= 500 ? "InternalError" : "HTTP\(status)"
        }
        return S3Error(code: document?.code ?? fallback, message: document?.message ?? "", statusCode: status,
                       operation: operation, bucket: bucket, key: key, region: configuration.region,
                       requestID: document?.requestID ?? headers.first(name: "x-amz-request-id"))
    }

    /// Runs `attempt` until it succeeds, fails for good, or attempts run out.
    private func withRetries<T>(_ operation: String, bucket: String, key: String?, _ attempt: () async throws -> T) async throws -> T {
        var tries = 0
        while true {
            tries += 1
            do {
                return try await attempt()
            } catch let error as S3Error where error.isRetryable && tries < configuration.maxAttempts {
                let delay = Backoff(base: configuration.retryBaseDelay, cap: configuration.retryBaseDelay * 1024, jitter: true)
                    .delay(retry: tries - 1)
                logger.debug("retrying S3 request", metadata: ["operation": "\(operation)", "attempt": "\(tries)", "error": "\(error.code)"])
                try await Task.sleep(for: delay)
            }
        }
    }
}

/// An object's body as it downloads; an error of the connection mid-body becomes the error
/// `broken` makes of it (how many bytes came first, and the transport's error), so a reader
/// learns which object broke off rather than an HTTP parser's state. Cancellation passes as is.
public struct S3ObjectBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let body: HTTPClientResponse.Body
    let size: Int64?
    let broken: @Sendable (_ received: Int64, _ error: any Error) -> S3Error

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: HTTPClientResponse.Body.AsyncIterator
        let broken: @Sendable (Int64, any Error) -> S3Error
        var received: Int64 = 0

        public mutating func next() async throws -> ByteBuffer? {
            do {
                let chunk = try await base.next()
                received += Int64(chunk?.readableBytes ?? 0)
                return chunk
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw broken(received, error)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: body.makeAsyncIterator(), broken: broken) }
}
