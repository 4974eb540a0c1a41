import Foundation
import S3Responses

/// An S3 (or STS, or container credentials endpoint) answer from an endpoint a tenant chose: every reader gives a value or nil, never a
/// trap, and a page never reports a negative size. The one document the client writes
/// (CompleteMultipartUpload) reads back as written, whatever the ETags hold.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzS3Responses(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let body = Data(UnsafeRawBufferPointer(start: start, count: count))
    _ = S3Responses.uploadID(body)
    _ = S3Responses.multipartUploadsPage(body)
    if let page = S3Responses.objectVersionsPage(body) {
        precondition(page.versions.allSatisfy { !$0.versionID.isEmpty }, "a version without an id was read")
    }
    if let page = S3Responses.objectsPage(body) {
        precondition(page.objects.allSatisfy { $0.size >= 0 }, "a listing reported a negative size")
    }
    _ = S3Responses.result(body)
    _ = S3Responses.errorDocument(body)
    _ = S3Responses.completedParts(body)
    // The credential services' answers (STS XML, the container endpoint's JSON): read or nil,
    // and what is read is never empty.
    for credentials in [CredentialResponses.assumedRoleCredentials(body), CredentialResponses.containerCredentials(body)] {
        if let credentials {
            precondition(!credentials.accessKeyID.isEmpty && !credentials.secretAccessKey.isEmpty, "empty credentials were read")
        }
    }
    _ = CredentialResponses.serviceError(body)

    // ETags made of the input's text, cut into parts at each newline. XML cannot carry every
    // character (controls) and reads a carriage return as a line feed: those are left out.
    let text = String(decoding: body, as: UTF8.self).unicodeScalars.filter { scalar in
        scalar == "\n" || scalar == "\t" || (scalar.value >= 0x20 && scalar != "\u{FFFE}" && scalar != "\u{FFFF}")
    }
    let etags = String(String.UnicodeScalarView(text)).split(separator: "\n", omittingEmptySubsequences: false).prefix(64)
    let parts = etags.enumerated().map { S3Responses.CompletedPart(number: $0.offset + 1, etag: String($0.element), checksumSHA256: "c2hh") }
    let document = S3Responses.completeMultipartUploadDocument(parts)
    precondition(S3Responses.completedParts(Data(document.utf8)) == parts, "the CompleteMultipartUpload document does not read back")
    return 0
}
