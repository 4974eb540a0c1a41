@testable import Bbolt
import Testing

/// Crafted files against the scanner's bounds: what one bad snapshot can cost is stated, not
/// whatever its headers claim.
@Suite("bbolt scanner bounds on crafted files")
struct BboltLimitsTests {
    static let pageSize = 4096

    static func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { for (index, byte) in $0.enumerated() { bytes[offset + index] = byte } }
    }

    /// Both meta pages' root set to `root`, their checksums recomputed.
    static func setRoot(_ root: UInt64, in bytes: inout [UInt8]) {
        for number in 0..<2 {
            let meta = number * pageSize + BboltSnapshotScanner.headerSize
            put(root, at: meta + 16, in: &bytes)
            put(BboltSnapshotScanner.fnv64a(bytes[meta..<(meta + 56)]), at: meta + 56, in: &bytes)
        }
    }

    static func scan(_ bytes: [UInt8]) throws -> (summary: BboltSummary, scanner: BboltSnapshotScanner) {
        var scanner = BboltSnapshotScanner()
        var offset = 0
        while offset < bytes.count {  // in Talos' 1 KiB pieces
            let end = min(offset + 1024, bytes.count)
            try scanner.feed(bytes[offset..<end])
            offset = end
        }
        return (try scanner.finish(), scanner)
    }

    @Test("every free block claims 64 MiB of overflow: what the scanner holds stays within its bound, and the file (no tree reaches them) is sound")
    func overflowClaimsAreBounded() throws {
        let pageCount = 900
        var bytes = BboltLayout.emptyDatabasePrefix(pageSize: Self.pageSize, pageCount: pageCount)
        let firstFree = bytes.count / Self.pageSize
        bytes += [UInt8](repeating: 0, count: (pageCount - firstFree) * Self.pageSize)
        for page in firstFree..<pageCount {  // stale headers of freed pages, each claiming the largest span
            let at = page * Self.pageSize
            Self.put(UInt64(page), at: at, in: &bytes)
            Self.put(BboltSnapshotScanner.leafFlag, at: at + 8, in: &bytes)
            Self.put(UInt32(BboltSnapshotScanner.maximumPageSpan / Self.pageSize - 1), at: at + 12, in: &bytes)
        }
        let (summary, scanner) = try Self.scan(bytes)
        #expect(summary.buckets == ["key"] && summary.totalKeys == 0)
        // Unbounded, 64 open pages (or all 895) would each take every later block: 895²/2 × 4 KiB.
        #expect(scanner.peakOpenBytes <= BboltSnapshotScanner.maximumOpenBytes, "\(scanner.peakOpenBytes)")
        #expect(scanner.peakOpenBytes > BboltSnapshotScanner.maximumOpenBytes / 2, "the bound was reached: the file tests it")
    }

    @Test("a chain of branch pages deeper than the limit is invalid (and the walk's recursion stays bounded); one within it is sound")
    func deepTrees() throws {
        func chain(levels: Int) throws -> [UInt8] {
            var bytes = BboltLayout.emptyDatabasePrefix(pageSize: Self.pageSize, pageCount: 4 + levels + 8)
            let leafRoot = bytes.count / Self.pageSize - 1  // the root bucket page
            bytes += [UInt8](repeating: 0, count: (levels + 8) * Self.pageSize)
            // Pages leafRoot+1 ... leafRoot+levels: each a branch with one child, the next page;
            // the last points at the leaf.
            for level in 0..<levels {
                let page = leafRoot + 1 + level, at = page * Self.pageSize
                Self.put(UInt64(page), at: at, in: &bytes)
                Self.put(BboltSnapshotScanner.branchFlag, at: at + 8, in: &bytes)
                Self.put(UInt16(1), at: at + 10, in: &bytes)
                let child = level == levels - 1 ? leafRoot : page + 1
                Self.put(UInt64(child), at: at + BboltSnapshotScanner.headerSize + 8, in: &bytes)
            }
            Self.setRoot(UInt64(leafRoot + 1), in: &bytes)
            return bytes
        }
        // Branch pages 4, 5, ... at depths 0, 1, ..., the leaf below the last: `levels` + 1 levels.
        let limit = BboltSnapshotScanner.maximumTreeDepth
        #expect(try Self.scan(try chain(levels: 10)).summary.buckets == ["key"])
        #expect(try Self.scan(try chain(levels: limit - 1)).summary.buckets == ["key"], "exactly \(limit) levels")
        #expect(throws: BboltInvalid("a tree is deeper than \(limit) levels (at page 3)")) {
            _ = try Self.scan(try chain(levels: limit))  // the leaf, page 3, is at depth 64
        }
        #expect(throws: BboltInvalid("a tree is deeper than \(limit) levels (at page \(4 + limit))")) {
            _ = try Self.scan(try chain(levels: limit + 1))
        }
    }

    @Test("a sound page with overflow that a tree reaches, behind more planted headers than the bounds allow: the planted ones give way and the file is sound")
    func soundPageBehindPlantedHeaders() throws {
        let pageCount = 300
        var bytes = BboltLayout.emptyDatabasePrefix(pageSize: Self.pageSize, pageCount: pageCount)
        let rootPage = bytes.count / Self.pageSize - 1
        let rootBytes = Array(bytes[(rootPage * Self.pageSize)..<((rootPage + 1) * Self.pageSize)])
        let firstFree = rootPage + 1
        bytes += [UInt8](repeating: 0, count: (pageCount - firstFree) * Self.pageSize)
        // 100 planted headers claiming 64 MiB each, then the real root: the root bucket page
        // again, with one overflow page, at page 250.
        for page in firstFree..<(firstFree + 100) {
            let at = page * Self.pageSize
            Self.put(UInt64(page), at: at, in: &bytes)
            Self.put(BboltSnapshotScanner.leafFlag, at: at + 8, in: &bytes)
            Self.put(UInt32(BboltSnapshotScanner.maximumPageSpan / Self.pageSize - 1), at: at + 12, in: &bytes)
        }
        let real = 250
        bytes.replaceSubrange((real * Self.pageSize)..<((real + 1) * Self.pageSize), with: rootBytes)
        Self.put(UInt64(real), at: real * Self.pageSize, in: &bytes)
        Self.put(UInt32(1), at: real * Self.pageSize + 12, in: &bytes)
        Self.setRoot(UInt64(real), in: &bytes)
        let (summary, scanner) = try Self.scan(bytes)
        #expect(summary.buckets == ["key"])
        #expect(scanner.peakOpenBytes <= BboltSnapshotScanner.maximumOpenBytes)
    }
}
