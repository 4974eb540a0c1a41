import Foundation

/// Runs a child process without blocking a thread of Swift's cooperative pool (which has one
/// thread per core: blocking one while waiting for a process stalls unrelated tests' timers).
/// Output goes through temporary files, so a large answer cannot fill a pipe and hang the child.
public enum ProcessRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutData: Data
    }

    /// A started process: read its output so far, stop it, or wait for it.
    public struct Running: @unchecked Sendable {
        let process: Process
        let exited: AsyncStream<Int32>
        let out: URL
        let err: URL

        public var stdoutSoFar: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }
        public var stderrSoFar: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }
        public var processIdentifier: Int32 { process.processIdentifier }

        public func stop() { if process.isRunning { process.terminate() } }

        /// Sends `signal` (SIGKILL to simulate a crash, SIGTERM for a clean stop).
        public func send(_ signal: Int32) { if process.isRunning { kill(process.processIdentifier, signal) } }

        public func finish() async throws -> Result {
            var statuses = exited.makeAsyncIterator()
            let status = await statuses.next() ?? -1
            let data = try Data(contentsOf: out)
            return Result(status: status, stdout: String(decoding: data, as: UTF8.self),
                          stderr: try String(contentsOf: err, encoding: .utf8), stdoutData: data)
        }
    }

    /// Starts `executable` (a path, or a name looked up on PATH).
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil) throws -> Running {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let out = directory.appendingPathComponent("out"), err = directory.appendingPathComponent("err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        if let stdin {
            let input = directory.appendingPathComponent("in")
            try stdin.write(to: input)
            process.standardInput = try FileHandle(forReadingFrom: input)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus); exited.continuation.finish() }
        try process.run()
        return Running(process: process, exited: exited.stream, out: out, err: err)
    }

    /// Runs to completion.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil) async throws -> Result {
        try await start(executable, arguments, environment: environment, stdin: stdin).finish()
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freeLoopbackPort() -> Int {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
