import Foundation
import Timestamps

/// RFC 3339 times (status fields, `--from`) and HTTP dates (S3's Last-Modified): parsing never
/// traps, and a parsed RFC 3339 time formats to text that parses back to the same second.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTimestamps(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    _ = HTTPDate.parse(text)
    guard let date = RFC3339.parse(text) else { return 0 }
    let formatted = RFC3339.format(date)
    guard let again = RFC3339.parse(formatted) else { preconditionFailure("\(formatted) does not parse back") }
    precondition(abs(again.timeIntervalSince(date)) < 1, "\(formatted) is not the time it came from")
    return 0
}
