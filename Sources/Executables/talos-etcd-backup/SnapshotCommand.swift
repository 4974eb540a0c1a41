import ArgumentParser
import Foundation
import S3
import SnapshotPipeline
import TalosAPI

/// `snapshot`: one verified etcd snapshot to a local file, like `talosctl etcd snapshot`,
/// through the same client the operator uses.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Take one verified etcd snapshot of a Talos control plane to a local file or to S3.",
        discussion: """
            To a file: the snapshot is written to a temporary file next to --output (mode 0600: \
            a snapshot holds every Secret of the cluster), flushed to disk, and moved to --output \
            only when its SHA-256 trailer and its bbolt structure (meta pages, B+trees) check \
            out, the same checks a scheduled backup makes; an existing file is replaced only with \
            --force, and SIGINT or SIGTERM removes the partial file. To \
            s3://BUCKET/KEY: it is streamed into a multipart upload (credentials from \
            AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), the operator's own pipeline; an \
            existing object is never overwritten. Either way a failed or corrupt snapshot leaves \
            nothing behind. Endpoints and nodes are tried in talosconfig order. Prints the node \
            that served it, its size and SHA-256, the etcd revision and the total key count.
            """)

    @Option(help: "talosconfig file, as talosctl writes it.")
    var talosconfig: String

    @Option(help: "Context to use (default: the talosconfig's current context).")
    var context: String?

    @Option(help: "Node to snapshot (default: the context's nodes, else its endpoints).")
    var node: String?

    @Option(help: "File to write the snapshot to (mode 0600), or s3://BUCKET/KEY.")
    var output: String

    @Flag(help: "Replace the --output file if it exists (never an S3 object).")
    var force = false

    @Option(help: "Seconds each Talos endpoint gets to connect and to answer (EtcdStatus, the snapshot's first response), 1 to 3600; the stream itself then takes as long as it keeps moving.")
    var talosTimeoutSeconds = 30

    func validate() throws {
        guard (1...3600).contains(talosTimeoutSeconds) else {
            throw ValidationError("--talos-timeout-seconds must be 1 to 3600, not \(talosTimeoutSeconds)")
        }
    }

    @OptionGroup var s3: S3Options

    func run() async throws {
        do {
            var context = try Talosconfig.load(file: talosconfig, context: self.context)
            if let node { context.nodes = [node] }
            let written = if output.hasPrefix("s3://") {
                try await snapshotToS3(context)
            } else {
                try await Self.snapshot(TalosClient(context: context, timeout: .seconds(talosTimeoutSeconds)), to: URL(fileURLWithPath: output), replacing: force)
            }
            print("node: \(written.node)")
            print("size: \(written.size) bytes")
            print("sha256: \(written.sha256)")
            if let revision = written.revision { print("etcd revision: \(revision)") }
            if let totalKeys = written.totalKeys { print("total keys: \(totalKeys)") }
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// The operator's pipeline (Talos stream -> trailer and structure checks -> multipart
    /// upload) to `s3://BUCKET/KEY`.
    func snapshotToS3(_ context: TalosContext) async throws -> Written {
        let destination = try s3.destination(output, flag: "--output")
        let stored = try await TalosToS3Transfer(talosTimeout: .seconds(talosTimeoutSeconds)).store(talos: context, destination: destination, plan: .plain, owner: "talos-etcd-backup-snapshot-\(UUID().uuidString)")
        return Written(node: stored.node, size: stored.size, sha256: stored.sha256, revision: stored.revision, totalKeys: stored.totalKeys)
    }

    struct Written: Sendable {
        var node: String
        var size: Int64
        var sha256: String
        var revision: Int64?
        var totalKeys: Int64?
    }

    /// Streams a snapshot into `output` through every check a scheduled backup makes
    /// (``SnapshotChecks``: etcd's trailer, the bbolt structure); ``AtomicFile``: whole, checked
    /// and synced, or not there at all.
    static func snapshot(_ client: TalosClient, to output: URL, replacing: Bool) async throws -> Written {
        if !replacing { try AtomicFile.refuseExisting(output) }
        return try await AtomicFile.write(to: output, replacing: replacing) { handle in
            try await client.snapshot { source, stream in
                let checks = SnapshotChecks()
                for try await chunk in checks.apply(to: stream) {
                    try chunk.withUnsafeReadableBytes { try handle.write(contentsOf: $0) }
                }
                let snapshot = try checks.result()
                return Written(node: source.node, size: snapshot.size, sha256: snapshot.sha256,
                               revision: snapshot.revision, totalKeys: snapshot.totalKeys)
            }
        }
    }
}
