import AllocatorSettings
import Age
import SnapshotPipeline
import BenchmarkSupport
import Foundation
import S3
import TalosAPI

// The operator's snapshot path end to end: a verified snapshot stream from the Talos node the
// talosconfig names (scripts/benchmark-pipeline starts the grpc-go stand-in and talos-test-server,
// each its own process, serving a generated snapshot) through TalosToS3Transfer (the backup
// controller's transfer, 8 MiB parts, 2 in flight) into the S3 test server named by
// $S3_TEST_SERVER: AUTH (moto with authentication on, the default) or RGW (Ceph's RADOS
// Gateway). Prints throughput and this process's peak resident memory.
// With $PIPELINE_MALLOC=operator, first sets glibc's malloc as `talos-etcd-backup run` does
// (AllocatorSettings: one arena, mapped part buffers), to measure the path as the operator runs it.
// Run with: scripts/benchmark-pipeline
// The label names what was set, so that the script can check each run is what it says.
var mallocSettings = "glibc's defaults"
if ProcessInfo.processInfo.environment["PIPELINE_MALLOC"] == "operator" {
    let refused = AllocatorSettings.apply(for: ProcessInfo.processInfo.environment)
    precondition(refused.isEmpty, "malloc refused \(refused)")
    mallocSettings = "run's settings \(AllocatorSettings.lastApplied.set.joined(separator: " "))"
}
let talosconfig = CommandLine.arguments[1]
let sizeMiB = Int(CommandLine.arguments[2])!
// Parts in flight: a number, or "default" (TalosToS3Transfer's).
let partsInFlight: Int = switch CommandLine.arguments.count > 3 ? CommandLine.arguments[3] : "default" {
case "default": TalosToS3Transfer().maxConcurrentParts
case let text: Int(text) ?? { fatalError("parts in flight \(text): expected a number or default") }()
}
// plain, zstd (level 3) or zstd+age (level 3, one X25519 recipient).
let encodingName = CommandLine.arguments.count > 4 ? CommandLine.arguments[4] : "plain"
// With $PIPELINE_IDENTITY_FILE set, the identity is written there and the object kept, so the
// script can time a restore of it.
let identity = AgeIdentity()
let keepFor = ProcessInfo.processInfo.environment["PIPELINE_IDENTITY_FILE"]
if let keepFor { try Data((identity.secretKeyString + "\n").utf8).write(to: URL(fileURLWithPath: keepFor)) }
let plan: SnapshotEncodingPlan = switch encodingName {
case "plain": .plain
case "zstd": SnapshotEncodingPlan(compressionLevel: 3)
case "zstd+age": SnapshotEncodingPlan(compressionLevel: 3, recipients: [identity.recipient])
default: fatalError("encoding \(encodingName): expected plain, zstd or zstd+age")
}


let environment = ProcessInfo.processInfo.environment
let server = environment["S3_TEST_SERVER"] ?? "AUTH"
let context = try Talosconfig.parse(try String(contentsOfFile: talosconfig, encoding: .utf8), source: talosconfig)
let destination = BackupDestination(
    s3: S3Configuration(
        region: environment["S3_TEST_REGION"] ?? "us-east-1", endpoint: environment["S3_TEST_\(server)_ENDPOINT"]!,
        credentials: S3Credentials(accessKeyID: environment["S3_TEST_\(server)_ACCESS_KEY_ID"]!,
                                   secretAccessKey: environment["S3_TEST_\(server)_SECRET_ACCESS_KEY"]!)),
    bucket: environment["S3_TEST_BUCKET"] ?? "etcd-backups", key: "pipeline-benchmark/\(UUID().uuidString)" + plan.encoding.fileExtension)
let clock = ContinuousClock()
let start = clock.now
let stored = try await TalosToS3Transfer(maxConcurrentParts: partsInFlight, talosTimeout: .seconds(60))
    .store(talos: context, destination: destination, plan: plan, owner: "benchmark")
let elapsed = clock.now - start
let seconds = elapsed.inSeconds
let snapshotSize = stored.snapshotSize ?? stored.size
let snapshotMiB = Double(snapshotSize) / 1_048_576
print(String(format: "pipeline Talos -> S3 (\(server), \(encodingName)): %d MiB snapshot in %.2f s = %.1f MiB/s, stored %.1f MiB (ratio %.2f), %d parts in flight, malloc: \(mallocSettings), peak RSS %.1f MiB",
             Int(snapshotSize >> 20), seconds, snapshotMiB / seconds, Double(stored.size) / 1_048_576, Double(snapshotSize) / Double(stored.size),
             partsInFlight, ProcessFigures.peakResidentMiB()))
precondition(snapshotSize == Int64(sizeMiB) * 1024 * 1024 + 32, "unexpected snapshot size \(snapshotSize)")
// The record step on its own: the copy of the stored object onto itself that ends an encoded
// backup, timed again: what writing the metadata costs on this server. A plain backup has no
// such copy, so its run ends here (scripts/benchmark-pipeline counts the process's CPU and the
// S3 server's during the run as the path's).
if plan != .plain {
    let client = try S3Client(configuration: destination.s3)
    let copyStart = clock.now
    try await client.replaceMetadata(bucket: destination.bucket, key: destination.key, size: stored.size, metadata: stored.metadata(owner: "benchmark"))
    print(String(format: "  the record copy of this object, timed again on its own: %.2f s (part of the time above)", (clock.now - copyStart).inSeconds))
    try await client.shutdown()
}
if keepFor != nil { print("object: \(destination.url)") }
