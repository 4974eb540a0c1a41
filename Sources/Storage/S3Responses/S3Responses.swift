import Foundation

/// One entry of ListObjectsV2.
public struct S3ObjectSummary: Sendable, Equatable {
    public var key: String
    public var size: Int64
    public var etag: String

    public init(key: String, size: Int64, etag: String) {
        self.key = key
        self.size = size
        self.etag = etag
    }
}

/// One page of ListObjectsV2.
public struct S3ObjectPage: Sendable, Equatable {
    public var objects: [S3ObjectSummary]
    public var nextContinuationToken: String?

    public init(objects: [S3ObjectSummary], nextContinuationToken: String?) {
        self.objects = objects
        self.nextContinuationToken = nextContinuationToken
    }
}

/// One in-progress multipart upload.
public struct S3MultipartUploadInfo: Sendable, Equatable {
    public var key: String
    public var uploadID: String

    public init(key: String, uploadID: String) {
        self.key = key
        self.uploadID = uploadID
    }
}

/// One version of an object (or a delete marker) in a ListObjectVersions answer.
public struct S3ObjectVersion: Sendable, Equatable {
    public var key: String
    public var versionID: String
    public var isDeleteMarker: Bool

    public init(key: String, versionID: String, isDeleteMarker: Bool) {
        self.key = key
        self.versionID = versionID
        self.isDeleteMarker = isDeleteMarker
    }
}

/// The XML documents S3 answers with, read into values, and the one document the client
/// writes. No I/O: the bytes come from a server that may be hostile (a tenant chooses the
/// endpoint), so every reader returns nil for what it cannot read, and nothing here traps. Time
/// and memory are linear in the body, which the HTTP layer bounds (16 MiB); the XML reader
/// bounds nesting and the number of elements (``S3XMLElement``). A module of its own so that
/// the fuzz target (`FuzzS3Responses`) reads S3's answers exactly as the client does, without
/// the HTTP stack.
public enum S3Responses {
    /// The `UploadId` of a CreateMultipartUpload answer; nil when missing or empty.
    public static func uploadID(_ body: Data) -> String? {
        guard let id = S3XMLElement.parse(body)?["UploadId"], !id.isEmpty else { return nil }
        return id
    }

    /// Where a ListMultipartUploads page says the next one starts.
    public struct UploadMarkers: Sendable, Equatable {
        public var key: String
        public var uploadID: String

        public init(key: String, uploadID: String) {
            self.key = key
            self.uploadID = uploadID
        }
    }

    /// A ListMultipartUploads page: its uploads (entries without a key or an upload id are
    /// skipped), and the markers of the next page when it says it is truncated.
    public static func multipartUploadsPage(_ body: Data) -> (uploads: [S3MultipartUploadInfo], next: UploadMarkers?)? {
        guard let document = S3XMLElement.parse(body) else { return nil }
        let uploads = document.children("Upload").compactMap { upload -> S3MultipartUploadInfo? in
            guard let key = upload["Key"], let id = upload["UploadId"] else { return nil }
            return S3MultipartUploadInfo(key: key, uploadID: id)
        }
        guard document["IsTruncated"] == "true", let key = document["NextKeyMarker"], let id = document["NextUploadIdMarker"] else {
            return (uploads, nil)
        }
        return (uploads, UploadMarkers(key: key, uploadID: id))
    }

    /// A ListObjectVersions page: its versions and delete markers (entries without a key or a
    /// version id are skipped), and the markers of the next page when it says it is truncated.
    public static func objectVersionsPage(_ body: Data) -> (versions: [S3ObjectVersion], next: UploadMarkers?)? {
        guard let document = S3XMLElement.parse(body) else { return nil }
        func entries(_ name: String, deleteMarker: Bool) -> [S3ObjectVersion] {
            document.children(name).compactMap { entry in
                guard let key = entry["Key"], let id = entry["VersionId"], !id.isEmpty else { return nil }
                return S3ObjectVersion(key: key, versionID: id, isDeleteMarker: deleteMarker)
            }
        }
        let versions = entries("Version", deleteMarker: false) + entries("DeleteMarker", deleteMarker: true)
        guard document["IsTruncated"] == "true", let key = document["NextKeyMarker"], let id = document["NextVersionIdMarker"] else {
            return (versions, nil)
        }
        return (versions, UploadMarkers(key: key, uploadID: id))
    }

    /// The body of PutObjectRetention: a mode and a date the caller made (not outside input).
    public static func retentionDocument(mode: String, retainUntil: String) -> String {
        "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>\(mode)</Mode><RetainUntilDate>\(retainUntil)</RetainUntilDate></Retention>"
    }

    /// A ListObjectsV2 page. An entry without a key is skipped; a `Size` that is not a
    /// non-negative decimal integer makes the page unreadable (nil), never a negative size.
    public static func objectsPage(_ body: Data) -> S3ObjectPage? {
        guard let document = S3XMLElement.parse(body) else { return nil }
        var objects: [S3ObjectSummary] = []
        for entry in document.children("Contents") {
            guard let key = entry["Key"] else { continue }
            var size: Int64 = 0
            if let text = entry["Size"] {
                guard let value = Int64(text), value >= 0 else { return nil }
                size = value
            }
            objects.append(S3ObjectSummary(key: key, size: size, etag: entry["ETag"] ?? ""))
        }
        let truncated = document["IsTruncated"] == "true"
        return S3ObjectPage(objects: objects, nextContinuationToken: truncated ? document["NextContinuationToken"] : nil)
    }

    /// What a CopyObject, UploadPartCopy or CompleteMultipartUpload answer says: S3 can answer
    /// these 200 with an `<Error>` document when they fail late.
    public enum Result: Sendable, Equatable {
        case etag(String)
        case error(code: String?, message: String?)
    }

    public static func result(_ body: Data) -> Result? {
        guard let document = S3XMLElement.parse(body) else { return nil }
        if document.name == "Error" { return .error(code: document["Code"], message: document["Message"]) }
        return .etag(document["ETag"] ?? "")
    }

    /// The fields of an `<Error>` body that the client reports.
    public struct ErrorDocument: Sendable, Equatable {
        public var code: String?
        public var message: String?
        public var requestID: String?
    }

    /// An error answer's body; nil when it is not XML (HEAD answers have no body).
    public static func errorDocument(_ body: Data) -> ErrorDocument? {
        guard let document = S3XMLElement.parse(body) else { return nil }
        return ErrorDocument(code: document["Code"], message: document["Message"], requestID: document["RequestId"])
    }

    /// One part as CompleteMultipartUpload lists it.
    public struct CompletedPart: Sendable, Equatable {
        public var number: Int
        public var etag: String
        /// Base64 SHA-256 of the part, when the upload asked for part checksums.
        public var checksumSHA256: String?

        public init(number: Int, etag: String, checksumSHA256: String? = nil) {
            self.number = number
            self.etag = etag
            self.checksumSHA256 = checksumSHA256
        }
    }

    /// The CompleteMultipartUpload request body: the parts in ascending order, text escaped.
    public static func completeMultipartUploadDocument(_ parts: [CompletedPart]) -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.number < $1.number }) {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(XMLEscape.escape(part.etag))</ETag>"
            if let checksum = part.checksumSHA256 { xml += "<ChecksumSHA256>\(XMLEscape.escape(checksum))</ChecksumSHA256>" }
            xml += "</Part>"
        }
        return xml + "</CompleteMultipartUpload>"
    }

    /// The parts a CompleteMultipartUpload document lists, read back (the fuzz target checks
    /// that writing and reading agree); nil when a part lacks a number or an ETag.
    public static func completedParts(_ body: Data) -> [CompletedPart]? {
        guard let document = S3XMLElement.parse(body), document.name == "CompleteMultipartUpload" else { return nil }
        var parts: [CompletedPart] = []
        for part in document.children("Part") {
            guard let number = part["PartNumber"].flatMap({ Int($0) }), let etag = part["ETag"] else { return nil }
            parts.append(CompletedPart(number: number, etag: etag, checksumSHA256: part["ChecksumSHA256"]))
        }
        return parts
    }
}
