import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes a file the way a restore must: under a temporary name beside the destination, synced
/// to disk, then renamed over it (rename(2) replaces atomically), so `--output` is either the
/// whole verified file or untouched; the temporary is removed on any failure.
enum AtomicFile {
    static func write<T>(to output: URL, _ body: (FileHandle) async throws -> T) async throws -> T {
        let temporary = output.deletingLastPathComponent()
            .appendingPathComponent(".\(output.lastPathComponent).partial-\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            let result: T
            do {
                result = try await body(handle)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            guard rename(temporary.path, output.path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: output.path, NSLocalizedDescriptionKey: String(cString: strerror(errno))])
            }
            return result
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
