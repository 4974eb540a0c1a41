import Foundation
import ProcFS
import Testing

/// `/proc` files read whole: the process metrics' `btime` is on the last lines of `/proc/stat`,
/// which passes 4 KiB on a node with many CPUs, and Foundation reads such files only that far.
@Suite("ProcFS: /proc files read whole")
struct ProcFSTests {
    /// The file read with C stdio to its end: the reference.
    static func readWithStdio(_ path: String) throws -> String {
        let file = try #require(fopen(path, "r"))
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1000)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `/proc/crypto` without its `refcnt` lines, which count the host's users of each
    /// algorithm and may change between two reads; the rest stays while no module loads.
    static func stableLines(_ text: String) -> [Substring] {
        text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("refcnt") }
    }

    @Test("a /proc file longer than 4 KiB is read to its end, as C stdio reads it")
    func longProcFile() throws {
        // 11 KiB here; a single read of a /proc file gives about 4 KiB.
        let expected = try Self.readWithStdio("/proc/crypto")
        try #require(expected.utf8.count > 8192, "/proc/crypto is \(expected.utf8.count) bytes here: too short to show a read past 4 KiB")
        let read = try #require(ProcFS.contents(of: "/proc/crypto"))
        #expect(read.utf8.count > 8192)
        #expect(Self.stableLines(read) == Self.stableLines(expected))
    }

    @Test("a file longer than the limit, or missing, is nil; a regular file is read whole")
    func limitsAndRegularFiles() throws {
        #expect(ProcFS.contents(of: "/proc/crypto", limit: 4096) == nil)
        #expect(ProcFS.contents(of: "/proc/no-such-file") == nil)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("procfs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        let text = String(repeating: "0123456789abcdef\n", count: 10_000)  // 170,000 bytes: several reads
        try text.write(to: file, atomically: true, encoding: .utf8)
        #expect(ProcFS.contents(of: file.path) == text)
        #expect(ProcFS.contents(of: file.path, limit: text.utf8.count) == text)
        #expect(ProcFS.contents(of: file.path, limit: text.utf8.count - 1) == nil)
    }
}
