import Foundation

/// A failed S3 request: S3's error code and message, and a description that tells the user
/// what to fix ("bucket my-etcd-backups does not exist in us-west-2").
public struct S3Error: Error, Sendable, CustomStringConvertible {
    /// The error codes this project reacts to; anything else is `.other`.
    public enum Kind: Sendable, Equatable {
        case noSuchBucket, noSuchKey, noSuchUpload, accessDenied, signatureDoesNotMatch, invalidAccessKeyId
        case slowDown, entityTooSmall, preconditionFailed, invalidPart, requestTimeTooSkewed
        case connectionFailed
        /// A download that broke off mid-body (the connection dropped after the headers).
        case incompleteDownload
        case other(String)
    }

    public var kind: Kind
    /// S3's `Code` (`NoSuchBucket`...), or a stand-in for bodiless answers.
    public var code: String
    public var message: String
    public var statusCode: Int
    public var operation: String
    public var bucket: String
    public var key: String?
    public var region: String
    public var requestID: String?

    public init(code: String, message: String, statusCode: Int, operation: String, bucket: String, key: String?, region: String, requestID: String? = nil) {
        self.code = code
        self.message = message
        self.statusCode = statusCode
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.region = region
        self.requestID = requestID
        self.kind = switch code {
        case "NoSuchBucket": .noSuchBucket
        case "NoSuchKey", "NotFound": .noSuchKey
        case "NoSuchUpload": .noSuchUpload
        case "AccessDenied", "Forbidden": .accessDenied
        case "SignatureDoesNotMatch": .signatureDoesNotMatch
        case "InvalidAccessKeyId": .invalidAccessKeyId
        case "SlowDown", "ServiceUnavailable", "ThrottlingException", "TooManyRequests": .slowDown
        case "EntityTooSmall": .entityTooSmall
        case "PreconditionFailed": .preconditionFailed
        case "InvalidPart", "InvalidPartOrder": .invalidPart
        case "RequestTimeTooSkewed": .requestTimeTooSkewed
        case "ConnectionFailed": .connectionFailed
        case "IncompleteDownload": .incompleteDownload
        default: .other(code)
        }
    }

    /// Whether trying again may succeed: throttling, server errors, dropped connections.
    public var isRetryable: Bool {
        kind == .slowDown || kind == .connectionFailed || kind == .incompleteDownload || statusCode >= 500 || statusCode == 429
            || code == "RequestTimeout" || code == "InternalError"
    }

    private var object: String { key.map { "s3://\(bucket)/\($0)" } ?? "s3://\(bucket)" }

    public var description: String {
        let what: String = switch kind {
        case .noSuchBucket: "bucket \(bucket) does not exist in \(region)"
        case .noSuchKey: "object \(object) does not exist"
        case .noSuchUpload: "multipart upload for \(object) does not exist (aborted or completed)"
        case .accessDenied: "access to \(object) denied: the access key's policy must allow \(operation) on it"
        case .signatureDoesNotMatch: "the request signature does not match: check the secret access key (and the region, \(region))"
        case .invalidAccessKeyId: "the access key ID is not known to the server: check the access key ID"
        case .slowDown: "the server asks to slow down (\(code))"
        case .entityTooSmall: "a part of \(object) is smaller than the 5 MiB minimum"
        case .preconditionFailed: "\(object) already exists and is never overwritten"
        case .invalidPart: "the parts listed for \(object) do not match the uploaded ones"
        case .requestTimeTooSkewed: "this machine's clock differs too much from the server's"
        case .connectionFailed: "cannot reach the S3 endpoint"
        case .incompleteDownload: "the download broke off"
        case .other: "\(code)"
        }
        return "S3 \(operation) \(object): \(what)" + (message.isEmpty ? "" : " (\(statusCode): \(message))")
    }
}
