/// What a bbolt database (an etcd snapshot) holds, read from its structure: the figures
/// `etcdctl snapshot status` reports, from the pages themselves.
public struct BboltSummary: Sendable, Equatable {
    /// The etcd revision: the main revision of the last key of the `key` bucket (0 without one).
    public var revision: Int64
    /// Entries over all top-level buckets, as `etcdctl snapshot status` counts "total keys".
    public var totalKeys: Int64
    /// Names of the top-level buckets, in key order.
    public var buckets: [String]
    public var pageSize: Int
    /// The transaction ID of the meta page in use.
    public var txid: UInt64
}

/// Why a database's structure does not check out.
public struct BboltInvalid: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "the snapshot is not a sound bbolt database: \(reason)" }
}

/// Checks a bbolt database as it streams past, in one pass and without keeping its pages:
/// both meta pages (magic, version, page size, FNV-64a checksum), then the B+trees of the
/// buckets resolved at the end from a compact index kept per page (type, element count,
/// children of a branch, the first 8 bytes of a leaf's last key, bucket entries).
///
/// Pages arrive in file order, not tree order, and a page that was freed keeps its old header,
/// which may claim overflow pages that have been reused since: so every page-size block is
/// looked at as a possible page on its own, and a page with overflow is assembled from the
/// blocks that follow while those blocks are indexed too. Only pages the trees reach matter;
/// a reached page must be a branch or leaf page whose header names its own position, within
/// the meta page's high-water mark, reached once (no cycles), and every leaf at the same depth.
///
/// Memory: the index costs 11 bytes per page plus 4 per branch child (under 4 MiB per GiB of
/// 4 KiB pages, ``PageIndex``); pages with overflow are held only until complete (at most
/// ``maximumPageSpan`` each), at most ``maximumOpenPages`` of them and ``maximumOpenBytes`` in
/// all: a crafted file whose every block claims overflow cannot make the scanner hold more. At a
/// bound the open page claiming the largest span gives way (a sound page claims what its values
/// need; a header planted in a value or left on a freed page may claim 64 MiB); a page given up
/// is recorded as invalid, which matters only if a tree reaches it (freed pages keep stale
/// headers, so an unreached one is no fault). Trees
/// deeper than ``maximumTreeDepth`` are invalid (bbolt's trees are a few levels deep), which
/// also bounds the recursion of the walk. Feed the whole stream, etcd's 32-byte SHA-256 trailer included
/// (checked elsewhere): ``finish()`` accepts a tail of exactly 32 bytes or none.
public struct BboltSnapshotScanner {
    /// The largest page (with its overflow) assembled: etcd's largest value is 1.5 MiB by
    /// default; a header claiming more is recorded as invalid, not buffered.
    public static let maximumPageSpan = 64 * 1024 * 1024
    /// Pages with overflow assembled at once: a sound file has one (plus freed pages whose
    /// stale headers claim overflow).
    public static let maximumOpenPages = 64
    /// Bytes held by pages being assembled, in all: twice the largest page.
    public static let maximumOpenBytes = 2 * maximumPageSpan
    /// The deepest tree accepted: bbolt's B+trees with 4 KiB pages hold billions of keys in
    /// fewer than ten levels.
    public static let maximumTreeDepth = 64
    static let magic: UInt32 = 0xED0C_DAED
    static let version: UInt32 = 2
    static let headerSize = 16
    static let elementSize = 16
    static let branchFlag: UInt16 = 0x01
    static let leafFlag: UInt16 = 0x02
    static let metaFlag: UInt16 = 0x04
    static let bucketLeafFlag: UInt32 = 0x01

    struct Meta {
        var root: UInt64
        var highWaterMark: UInt64
        var txid: UInt64
    }

    struct BucketEntry {
        var name: [UInt8]
        /// 0 for an inline bucket, whose counts follow.
        var root: UInt64
        var inlineCount: Int
        var inlineLastKey: UInt64?
    }

    /// What the index keeps of one page.
    enum Entry {
        case branch(children: [UInt64])
        case leaf(count: Int, lastKey: UInt64?, buckets: [BucketEntry])
        case invalid(String)
    }

    private var buffer: [UInt8] = []
    /// Offset in the stream of `buffer[0]`.
    private var bufferStart = 0
    private var pageSize: Int?
    private var metas: [Meta?] = [nil, nil]
    private var metaProblems: [String?] = [nil, nil]
    private var index = PageIndex()
    /// Pages being assembled from the blocks after their first: (pgid, bytes so far, span).
    private var pending: [(id: UInt64, bytes: [UInt8], span: Int)] = []
    /// Bytes held by `pending`.
    private var openBytes = 0
    private var nextBlock: UInt64 = 0
    /// The larger high-water mark of the two metas, once both are read.
    private var pagesInUse = UInt64.max

    public init() {}

    /// Bytes the page index holds (for the memory figure).
    public var indexBytes: Int { index.bytes }
    /// Pages with overflow pages that were assembled from several blocks.
    public private(set) var assembledPages = 0
    /// The most bytes pages being assembled held at once.
    public private(set) var peakOpenBytes = 0

    public mutating func feed(_ bytes: some Collection<UInt8>) throws {
        buffer.append(contentsOf: bytes)
        if pageSize == nil {
            guard buffer.count >= Self.headerSize + 64 else { return }
            pageSize = try Self.pageSize(fromFirstMeta: buffer)
        }
        let size = pageSize!
        var offset = 0
        while buffer.count - offset >= size {
            try takeBlock(buffer[offset..<(offset + size)], size: size)
            offset += size
        }
        if offset > 0 {
            buffer.removeFirst(offset)
            bufferStart += offset
        }
    }

    /// Checks the metas and resolves the trees.
    public mutating func finish() throws -> BboltSummary {
        guard let size = pageSize else { throw BboltInvalid("it is shorter than one meta page (\(buffer.count) bytes)") }
        guard buffer.isEmpty || buffer.count == 32 else {
            throw BboltInvalid("it ends \(buffer.count) bytes into a \(size)-byte page (neither a whole page nor etcd's 32-byte trailer)")
        }
        for (number, problem) in metaProblems.enumerated() {
            if let problem { throw BboltInvalid("meta page \(number): \(problem)") }
        }
        guard let meta0 = metas[0], let meta1 = metas[1] else { throw BboltInvalid("the file holds fewer than two meta pages") }
        let meta = meta0.txid >= meta1.txid ? meta0 : meta1
        // A page whose overflow runs past the end is a problem only if a tree reaches it.
        for unfinished in pending {
            record(unfinished.id, .invalid("page \(unfinished.id) claims \(unfinished.span / size - 1) overflow pages beyond the end of the file"))
        }
        pending = []
        openBytes = 0
        var visited = Set<UInt64>()
        var leafDepth: Int?
        var rootEntries: [BucketEntry] = []
        try walk(meta.root, meta: meta, depth: 0, visited: &visited, leafDepth: &leafDepth) { _, _, buckets in
            rootEntries += buckets
        }
        var totalKeys: Int64 = 0
        var revision: Int64 = 0
        for bucket in rootEntries {
            var count = 0
            var last: UInt64?
            if bucket.root == 0 {
                count = bucket.inlineCount
                last = bucket.inlineLastKey
            } else {
                var bucketLeafDepth: Int?
                try walk(bucket.root, meta: meta, depth: 0, visited: &visited, leafDepth: &bucketLeafDepth) { leafCount, lastKey, _ in
                    count += leafCount
                    if let lastKey { last = lastKey }  // leaves come in key order: the last one wins
                }
            }
            totalKeys += Int64(count)
            if bucket.name == Array("key".utf8), let last { revision = Int64(bitPattern: last) }
        }
        return BboltSummary(revision: revision, totalKeys: totalKeys,
                            buckets: rootEntries.map { String(decoding: $0.name, as: UTF8.self) }, pageSize: size, txid: meta.txid)
    }

    // MARK: Streaming

    private mutating func takeBlock(_ block: ArraySlice<UInt8>, size: Int) throws {
        let position = nextBlock
        nextBlock += 1
        // Pages being assembled take this block as their next piece.
        var index = 0
        while index < pending.count {
            pending[index].bytes.append(contentsOf: block)
            openBytes += block.count
            if pending[index].bytes.count >= pending[index].span {
                let done = pending.remove(at: index)
                openBytes -= done.bytes.count
                record(done.id, Self.parse(done.bytes[...]))
                assembledPages += 1
            } else {
                index += 1
            }
        }
        // Over the byte bound, the pages claiming the most are given up first.
        while openBytes > Self.maximumOpenBytes { giveUpLargestOpenPage() }
        peakOpenBytes = max(peakOpenBytes, openBytes)
        // And the block itself, as a possible page.
        let id = Self.uint64(block, 0), flags = Self.uint16(block, 8), overflow = Int(Self.uint32(block, 12))
        if position < 2 {
            checkMeta(block, number: Int(position), id: id, flags: flags)
            if position == 1, let meta0 = metas[0], let meta1 = metas[1] {
                // No tree may reach a page past the high-water mark: those are not indexed, and
                // the index is sized once (address space only: untouched pages cost nothing).
                pagesInUse = max(meta0.highWaterMark, meta1.highWaterMark)
                self.index.reserve(pages: Int(min(pagesInUse, 1 << 24)))
            }
            return
        }
        guard position < pagesInUse else { return }
        guard id == position, flags == Self.branchFlag || flags == Self.leafFlag else { return }  // free or overflow data
        guard overflow > 0 else {
            record(position, Self.parse(block))
            return
        }
        let span = (overflow + 1) * size
        guard span <= Self.maximumPageSpan else {
            record(position, .invalid("page \(position) claims \(overflow) overflow pages (\(span) bytes), more than \(Self.maximumPageSpan)"))
            return
        }
        // At a bound, the open page claiming the most gives way to one claiming less: a sound
        // file's pages claim what their values need (etcd's are 1.5 MiB at most by default),
        // while headers planted in values or left on freed pages can claim anything.
        while pending.count >= Self.maximumOpenPages || openBytes + block.count > Self.maximumOpenBytes {
            guard let largest = pending.map(\.span).max(), largest > span else {
                record(position, .invalid("page \(position) was not assembled: \(pending.count) pages with overflow holding \(openBytes / 1_048_576) MiB were open at once (at most \(Self.maximumOpenPages), \(Self.maximumOpenBytes / 1_048_576) MiB)"))
                return
            }
            giveUpLargestOpenPage()
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(span)  // address space; only what arrives is touched
        bytes.append(contentsOf: block)
        pending.append((position, bytes, span))
        openBytes += block.count
        peakOpenBytes = max(peakOpenBytes, openBytes)
    }

    /// Stops assembling the open page that claims the largest span; it is recorded as invalid,
    /// which matters only if a tree reaches it.
    private mutating func giveUpLargestOpenPage() {
        guard let index = pending.indices.max(by: { pending[$0].span < pending[$1].span }) else { return }
        let dropped = pending.remove(at: index)
        openBytes -= dropped.bytes.count
        record(dropped.id, .invalid("page \(dropped.id) was not assembled: it claims \(dropped.span / 1_048_576) MiB while pages with overflow open at once were at their bound (\(Self.maximumOpenPages) pages, \(Self.maximumOpenBytes / 1_048_576) MiB)"))
    }

    private mutating func record(_ id: UInt64, _ entry: Entry) { index.set(id, entry) }

    private mutating func checkMeta(_ block: ArraySlice<UInt8>, number: Int, id: UInt64, flags: UInt16) {
        let base = Self.headerSize
        let fields = block.dropFirst(base)
        guard id == UInt64(number), flags == Self.metaFlag else {
            metaProblems[number] = "its header says page \(id) with flags 0x\(String(flags, radix: 16)), not meta page \(number)"
            return
        }
        guard Self.uint32(fields, 0) == Self.magic else { metaProblems[number] = "wrong magic number"; return }
        guard Self.uint32(fields, 4) == Self.version else { metaProblems[number] = "version \(Self.uint32(fields, 4)), not \(Self.version)"; return }
        let checksum = Self.uint64(fields, 56)
        guard Self.fnv64a(fields.prefix(56)) == checksum else { metaProblems[number] = "its FNV-64a checksum does not match"; return }
        let size = Int(Self.uint32(fields, 8))
        guard size == pageSize else { metaProblems[number] = "page size \(size) differs from the first meta page's \(pageSize ?? 0)"; return }
        metas[number] = Meta(root: Self.uint64(fields, 16), highWaterMark: Self.uint64(fields, 40), txid: Self.uint64(fields, 48))
    }

    /// The page size from the first meta page (pages can be 512 bytes to 64 KiB, a power of two).
    static func pageSize(fromFirstMeta bytes: [UInt8]) throws -> Int {
        let fields = bytes.dropFirst(headerSize)
        guard uint32(fields, 0) == magic else { throw BboltInvalid("meta page 0: wrong magic number (not a bbolt database)") }
        let size = Int(uint32(fields, 8))
        guard (512...65536).contains(size), size & (size - 1) == 0 else { throw BboltInvalid("meta page 0: page size \(size) is not a power of two from 512 to 65536") }
        return size
    }

    // MARK: Parsing one page

    static func parse(_ page: ArraySlice<UInt8>) -> Entry {
        let base = page.startIndex
        let id = uint64(page, 0), flags = uint16(page, 8), count = Int(uint16(page, 10))
        guard headerSize + count * elementSize <= page.count else {
            return .invalid("page \(id): \(count) elements do not fit in \(page.count) bytes")
        }
        if flags == branchFlag {
            let children = (0..<count).map { uint64(page, headerSize + $0 * elementSize + 8) }
            return .branch(children: children)
        }
        guard flags == leafFlag else { return .invalid("page \(id): flags 0x\(String(flags, radix: 16)), neither branch nor leaf") }
        var lastKey: UInt64?
        var buckets: [BucketEntry] = []
        for element in 0..<count {
            let at = headerSize + element * elementSize
            let elementFlags = uint32(page, at), position = Int(uint32(page, at + 4))
            let keySize = Int(uint32(page, at + 8)), valueSize = Int(uint32(page, at + 12))
            let keyStart = at + position
            guard keyStart >= 0, keyStart + keySize + valueSize <= page.count else {
                return .invalid("page \(id): element \(element) points outside the page")
            }
            let key = page[(base + keyStart)..<(base + keyStart + keySize)]
            if element == count - 1 { lastKey = keyPrefix(key) }
            guard elementFlags & bucketLeafFlag != 0 else { continue }
            guard valueSize >= 16 else { return .invalid("page \(id): bucket \(String(decoding: key, as: UTF8.self)) has a \(valueSize)-byte header") }
            let value = page[(base + keyStart + keySize)..<(base + keyStart + keySize + valueSize)]
            let root = uint64(value, 0)
            var entry = BucketEntry(name: Array(key), root: root, inlineCount: 0, inlineLastKey: nil)
            if root == 0 {
                // An inline bucket: a leaf page follows its 16-byte header in the value.
                switch parse(value.dropFirst(16)) {
                case .leaf(let inlineCount, let inlineLast, _):
                    entry.inlineCount = inlineCount
                    entry.inlineLastKey = inlineLast
                case .invalid(let problem): return .invalid("inline bucket \(String(decoding: key, as: UTF8.self)) in \(problem)")
                case .branch: return .invalid("page \(id): inline bucket \(String(decoding: key, as: UTF8.self)) is not a leaf")
                }
            }
            buckets.append(entry)
        }
        return .leaf(count: count, lastKey: lastKey, buckets: buckets)
    }

    // MARK: Resolving

    /// Visits the tree under `pgid` in key order, calling `leaf` for each leaf page.
    private func walk(_ pgid: UInt64, meta: Meta, depth: Int, visited: inout Set<UInt64>, leafDepth: inout Int?,
                      _ leaf: (_ count: Int, _ lastKey: UInt64?, _ buckets: [BucketEntry]) throws -> Void) throws {
        guard depth < Self.maximumTreeDepth else {
            throw BboltInvalid("a tree is deeper than \(Self.maximumTreeDepth) levels (at page \(pgid))")
        }
        guard pgid >= 2, pgid < meta.highWaterMark else {
            throw BboltInvalid("a tree points at page \(pgid), outside the pages in use (2 to \(meta.highWaterMark - 1))")
        }
        guard visited.insert(pgid).inserted else { throw BboltInvalid("page \(pgid) is reached twice (a cycle or a shared page)") }
        guard let entry = index.get(pgid) else {
            throw BboltInvalid("page \(pgid), reached from a tree, is not a branch or leaf page naming itself")
        }
        switch entry {
        case .invalid(let problem):
            throw BboltInvalid(problem)
        case .branch(let children):
            guard !children.isEmpty else { throw BboltInvalid("branch page \(pgid) has no children") }
            for child in children {
                try walk(child, meta: meta, depth: depth + 1, visited: &visited, leafDepth: &leafDepth, leaf)
            }
        case .leaf(let count, let lastKey, let buckets):
            if let leafDepth, leafDepth != depth {
                throw BboltInvalid("leaf page \(pgid) is at depth \(depth), other leaves of its tree at \(leafDepth)")
            }
            leafDepth = depth
            try leaf(count, lastKey, buckets)
        }
    }

    // MARK: Bytes

    /// The first 8 bytes of a key, big-endian (an etcd revision key's main revision).
    static func keyPrefix(_ key: ArraySlice<UInt8>) -> UInt64 {
        var value: UInt64 = 0
        for byte in key.prefix(8) { value = value << 8 | UInt64(byte) }
        return value << (8 * UInt64(max(0, 8 - key.count)))
    }

    static func fnv64a(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    static func uint16(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> UInt16 {
        let at = bytes.startIndex + offset
        return UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    static func uint32(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> UInt32 {
        let at = bytes.startIndex + offset
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }

    static func uint64(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> UInt64 {
        let at = bytes.startIndex + offset
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }
}

/// The scanner's index of pages by ID, compact: per page one kind byte, a 16-bit count (bbolt's
/// own element count is 16 bits) and a 64-bit value (a leaf's last key prefix, a branch's
/// offset into one flat array of 32-bit children); bucket entries and problems (rare) beside
/// it. 11 bytes a page plus 4 per branch child: under 4 MiB per GiB of 4 KiB pages.
struct PageIndex {
    private var kinds: [UInt8] = []  // 0 none, 1 branch, 2 leaf, 3 invalid
    private var counts: [UInt16] = []  // leaf: element count; branch: child count
    private var values: [UInt64] = []  // leaf: last key prefix (or UInt64.max for none); branch: offset in children
    private var children: [UInt32] = []
    private var buckets: [UInt64: [BboltSnapshotScanner.BucketEntry]] = [:]
    private var problems: [UInt64: String] = [:]

    var bytes: Int { kinds.capacity + counts.capacity * 2 + values.capacity * 8 + children.capacity * 4 }

    /// Sizes the per-page arrays for `pages` pages at once (the meta page's high-water mark),
    /// so they do not grow by doubling.
    mutating func reserve(pages: Int) {
        kinds.reserveCapacity(pages)
        counts.reserveCapacity(pages)
        values.reserveCapacity(pages)
    }

    mutating func set(_ id: UInt64, _ entry: BboltSnapshotScanner.Entry) {
        let slot = Int(id)
        if kinds.count <= slot {
            let grow = slot + 1 - kinds.count
            kinds.append(contentsOf: repeatElement(0, count: grow))
            counts.append(contentsOf: repeatElement(0, count: grow))
            values.append(contentsOf: repeatElement(0, count: grow))
        }
        switch entry {
        case .branch(let list):
            kinds[slot] = 1
            counts[slot] = UInt16(list.count)  // from bbolt's 16-bit count
            values[slot] = UInt64(children.count)
            // A child beyond 2^32 - 2 (16 TiB of 4 KiB pages) is kept as UInt32.max, which no
            // tree may reach: ``get`` hands it back as UInt64.max, outside every file.
            children.append(contentsOf: list.lazy.map { UInt32(clamping: $0) })
        case .leaf(let count, let lastKey, let entries):
            kinds[slot] = 2
            counts[slot] = UInt16(clamping: count)
            values[slot] = lastKey ?? .max
            if !entries.isEmpty { buckets[id] = entries }
        case .invalid(let problem):
            kinds[slot] = 3
            problems[id] = problem
        }
    }

    func get(_ id: UInt64) -> BboltSnapshotScanner.Entry? {
        let slot = Int(id)
        guard slot < kinds.count else { return nil }
        switch kinds[slot] {
        case 1:
            let start = Int(values[slot])
            return .branch(children: children[start..<(start + Int(counts[slot]))].map { $0 == .max ? .max : UInt64($0) })
        case 2:
            return .leaf(count: Int(counts[slot]), lastKey: values[slot] == .max ? nil : values[slot], buckets: buckets[id] ?? [])
        case 3:
            return .invalid(problems[id] ?? "page \(id) is invalid")
        default:
            return nil
        }
    }
}

/// The smallest sound bbolt database for a file of `pageCount` pages: two meta pages, a
/// freelist listing every page nothing uses (bbolt's own check, run by `etcdctl snapshot
/// status`, wants each page reachable or free), and a root bucket page holding one empty inline
/// bucket named `key`. Test doubles put it in front of generated bytes (the free pages) so
/// that a synthetic snapshot passes the structure check and etcdctl. Returns the prefix: the
/// pages up to and including the root bucket page.
public enum BboltLayout {
    public static func emptyDatabasePrefix(pageSize: Int = 4096, pageCount: Int) -> [UInt8] {
        precondition(pageSize >= 512)
        // The freelist (page 2 and its overflow pages) lists the pages after the root page.
        var overflow = 0
        while true {
            let free = pageCount - 4 - overflow
            let listBytes = BboltSnapshotScanner.headerSize + (free >= 0xFFFF ? 8 : 0) + 8 * max(free, 0)
            let needed = (listBytes + pageSize - 1) / pageSize - 1
            if needed <= overflow { break }
            overflow = needed
        }
        let rootPage = 3 + overflow, free = pageCount - rootPage - 1
        precondition(free >= 0, "\(pageCount) pages are too few for the layout")
        var bytes = [UInt8](repeating: 0, count: (rootPage + 1) * pageSize)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (index, byte) in $0.enumerated() { bytes[offset + index] = byte } }
        }
        for number in 0..<2 {
            let page = number * pageSize, meta = page + BboltSnapshotScanner.headerSize
            put(UInt64(number), at: page)
            put(BboltSnapshotScanner.metaFlag, at: page + 8)
            put(BboltSnapshotScanner.magic, at: meta)
            put(BboltSnapshotScanner.version, at: meta + 4)
            put(UInt32(pageSize), at: meta + 8)
            put(UInt64(rootPage), at: meta + 16)  // root bucket page
            put(UInt64(2), at: meta + 32)  // freelist page
            put(UInt64(pageCount), at: meta + 40)  // high-water mark
            put(UInt64(2 + number), at: meta + 48)  // txid: meta page n holds an n-parity txid
            put(BboltSnapshotScanner.fnv64a(bytes[meta..<(meta + 56)]), at: meta + 56)
        }
        let list = 2 * pageSize
        put(UInt64(2), at: list)
        put(UInt16(0x10), at: list + 8)
        put(UInt16(min(free, 0xFFFF)), at: list + 10)
        put(UInt32(overflow), at: list + 12)
        var at = list + BboltSnapshotScanner.headerSize
        if free >= 0xFFFF {
            put(UInt64(free), at: at)
            at += 8
        }
        for page in (rootPage + 1)..<max(pageCount, rootPage + 1) {
            put(UInt64(page), at: at)
            at += 8
        }
        let root = rootPage * pageSize
        put(UInt64(rootPage), at: root)
        put(BboltSnapshotScanner.leafFlag, at: root + 8)
        put(UInt16(1), at: root + 10)
        let element = root + BboltSnapshotScanner.headerSize
        put(BboltSnapshotScanner.bucketLeafFlag, at: element)
        put(UInt32(BboltSnapshotScanner.elementSize), at: element + 4)  // key right after the element
        put(UInt32(3), at: element + 8)
        put(UInt32(16 + BboltSnapshotScanner.headerSize), at: element + 12)  // bucket header + inline page
        let key = element + BboltSnapshotScanner.elementSize
        for (index, byte) in "key".utf8.enumerated() { bytes[key + index] = byte }
        // Value: bucket header (root 0: inline, sequence 0), then an empty inline leaf page.
        put(BboltSnapshotScanner.leafFlag, at: key + 3 + 16 + 8)
        return bytes
    }
}
