#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads files under `/proc` whole, for the operator's process metrics, the test processes and
/// the benchmarks.
///
/// Why not Foundation: procfs reports a size of 0, and `String(contentsOfFile:)` then returns
/// the first 4 KiB only. Measured here: 27 of 1,106 lines of `/proc/self/net/tcp` with 200
/// sockets listening. `/proc/stat` on a node with many CPUs and interrupts is far longer than
/// 4 KiB, and its `btime` line comes last.
public enum ProcFS {
    /// The file's text, read until its end; nil when it cannot be read or is longer than
    /// `limit` bytes (a bound on memory: `/proc/net/tcp` grows with every socket).
    public static func contents(of path: String, limit: Int = 64 << 20) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { return String(decoding: bytes, as: UTF8.self) }
            guard count <= limit - bytes.count else { return nil }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }
}
