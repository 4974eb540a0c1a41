import Bbolt

/// A snapshot from a Talos node, as the structure check sees it: any bytes, fed in pieces of
/// any size (the first byte picks the size), end in a summary or BboltInvalid, never a trap, a
/// hang or memory beyond the scanner's bounds (scripts/fuzz runs this with -rss_limit_mb).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBbolt(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let first = bytes.first else { return 0 }
    let piece = Int(first) * 64 + 1
    var scanner = BboltSnapshotScanner()
    do {
        var offset = 1
        while offset < bytes.count {
            let end = min(offset + piece, bytes.count)
            try scanner.feed(bytes[offset..<end])
            offset = end
        }
        _ = try scanner.finish()
    } catch {
        // Invalid input is expected; only a trap or a hang is a finding.
    }
    return 0
}
