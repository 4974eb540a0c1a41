import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes a file the way a restore must: under a temporary name beside the destination
/// (created with `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600: a snapshot holds every Secret of the
/// cluster), synced to disk, then moved to the destination, so `--output` is either the whole
/// verified file or untouched. The temporary is removed on any failure, and on SIGINT or
/// SIGTERM (``PartialFiles``). An existing destination is replaced only with `replacing`
/// (`--force`): otherwise it is refused before anything is read, and again, atomically, at
/// the end (link(2) never replaces), in case it appeared meanwhile.
enum AtomicFile {
    /// The error for an `--output` that exists and may not be replaced.
    static func refuseExisting(_ output: URL) throws {
        var info = stat()
        if lstat(output.path, &info) == 0 { throw OutputExists(path: output.path) }
    }

    static func write<T>(to output: URL, replacing: Bool, _ body: (FileHandle) async throws -> T) async throws -> T {
        if !replacing { try refuseExisting(output) }
        PartialFiles.shared.removeOnSignals()
        let temporary = output.deletingLastPathComponent()
            .appendingPathComponent(".\(output.lastPathComponent).partial-\(UUID().uuidString.prefix(8))")
        PartialFiles.shared.insert(temporary.path)  // before it exists: a signal never misses it
        defer { PartialFiles.shared.remove(temporary.path) }
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw OutputProblem(message: "cannot create \(temporary.path): \(String(cString: strerror(errno)))")
        }
        do {
            let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            let result: T
            do {
                result = try await body(handle)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            if replacing {
                guard rename(temporary.path, output.path) == 0 else {
                    throw OutputProblem(message: "cannot move the snapshot to \(output.path): \(String(cString: strerror(errno)))")
                }
            } else if link(temporary.path, output.path) == 0 {
                unlink(temporary.path)
            } else if errno == EEXIST {
                throw OutputExists(path: output.path)
            } else if [EPERM, EOPNOTSUPP, ENOSYS, EMLINK].contains(errno) {
                // A file system without hard links (FAT, some FUSE and SMB mounts): checked,
                // then renamed, which is not atomic against a file appearing in between.
                try refuseExisting(output)
                guard rename(temporary.path, output.path) == 0 else {
                    throw OutputProblem(message: "cannot move the snapshot to \(output.path): \(String(cString: strerror(errno)))")
                }
            } else {
                throw OutputProblem(message: "cannot move the snapshot to \(output.path): \(String(cString: strerror(errno)))")
            }
            return result
        } catch {
            unlink(temporary.path)
            throw error
        }
    }
}

/// `--output` names a file (or link) that is there already.
struct OutputExists: Error, CustomStringConvertible {
    var path: String
    var description: String { "\(path) exists; pass --force to replace it" }
}

/// The output file could not be made.
struct OutputProblem: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The temporary files being written, removed if the process is stopped by SIGINT or SIGTERM
/// (the process then exits at once, with `_exit`, with 128 + the signal's number, as the
/// default action's status reads in a shell). A stopped `restore` or `snapshot` leaves no
/// partial snapshot behind; a signal that comes just as the file is moved into place may find
/// `--output` complete.
final class PartialFiles: Sendable {
    static let shared = PartialFiles()

    private let paths = Mutex<Set<String>>([])
    private let sources = Mutex<[any DispatchSourceSignal]>([])

    func insert(_ path: String) { paths.withLock { _ = $0.insert(path) } }
    func remove(_ path: String) { paths.withLock { _ = $0.remove(path) } }

    /// Takes over SIGINT and SIGTERM (once).
    func removeOnSignals() {
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in
                    let removed = paths.withLock { paths in
                        for path in paths { unlink(path) }
                        return paths.count
                    }
                    let name = number == SIGINT ? "SIGINT" : "SIGTERM"
                    FileHandle.standardError.write(Data("interrupted (\(name)): \(removed) partial file\(removed == 1 ? "" : "s") removed\n".utf8))
                    _exit(128 + number)
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
