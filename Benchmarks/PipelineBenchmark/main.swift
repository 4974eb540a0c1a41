import BackupOperator
import BenchmarkSupport
import Foundation
import S3
import TalosAPI

// The operator's snapshot path end to end: a verified snapshot stream from talos-test-server
// (its own process, serving a generated snapshot) through TalosToS3Transfer (the backup
// controller's transfer, 8 MiB parts, 2 in flight) into the S3 test server named by
// $S3_TEST_SERVER: AUTH (moto with authentication on, the default) or RGW (Ceph's RADOS
// Gateway). Prints throughput and this process's peak resident memory.
// Run with: scripts/benchmark-pipeline
let talosconfig = CommandLine.arguments[1]
let sizeMiB = Int(CommandLine.arguments[2])!
let partsInFlight = CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3])! : TalosToS3Transfer().maxConcurrentParts


let environment = ProcessInfo.processInfo.environment
let server = environment["S3_TEST_SERVER"] ?? "AUTH"
let context = try Talosconfig.parse(try String(contentsOfFile: talosconfig, encoding: .utf8), source: talosconfig)
let destination = BackupDestination(
    s3: S3Configuration(
        region: environment["S3_TEST_REGION"] ?? "us-east-1", endpoint: environment["S3_TEST_\(server)_ENDPOINT"]!,
        credentials: S3Credentials(accessKeyID: environment["S3_TEST_\(server)_ACCESS_KEY_ID"]!,
                                   secretAccessKey: environment["S3_TEST_\(server)_SECRET_ACCESS_KEY"]!)),
    bucket: environment["S3_TEST_BUCKET"] ?? "etcd-backups", key: "pipeline-benchmark/\(UUID().uuidString).db")
let clock = ContinuousClock()
let start = clock.now
let stored = try await TalosToS3Transfer(maxConcurrentParts: partsInFlight, talosTimeout: .seconds(60))
    .store(talos: context, destination: destination, owner: "benchmark")
let elapsed = clock.now - start
let seconds = elapsed.inSeconds
print(String(format: "pipeline Talos -> S3 (\(server)): %d MiB in %.2f s = %.1f MiB/s, %d parts in flight, peak RSS %.1f MiB",
             Int(stored.size >> 20), seconds, Double(stored.size) / 1_048_576 / seconds, partsInFlight, ProcessFigures.peakResidentMiB()))
precondition(stored.size == Int64(sizeMiB) * 1024 * 1024 + 32, "unexpected snapshot size \(stored.size)")
