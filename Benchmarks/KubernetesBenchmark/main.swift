import BenchmarkSupport
import ControllerRuntime
import Foundation
import KubernetesClient
import Logging
import CustomResources

// Informer over 10,000 custom objects (time to sync, resident memory of this process) and
// work-queue throughput. The API server is kubernetes-test-server in its own process, so its
// memory is not counted. Run with: scripts/benchmark-kubernetes
let objectCount = Int(ProcessInfo.processInfo.environment["OBJECTS"] ?? "10000")!



let serverPath = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kubernetes-test-server").path
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
let kubeconfigPath = directory.appendingPathComponent("kubeconfig").path
let server = Process()
server.executableURL = URL(fileURLWithPath: serverPath)
server.arguments = ["--kubeconfig", kubeconfigPath]
server.standardOutput = FileHandle.nullDevice
server.standardError = FileHandle.nullDevice
try server.run()
defer { server.terminate() }
while !FileManager.default.fileExists(atPath: kubeconfigPath) { try await Task.sleep(for: .milliseconds(20)) }

var logger = Logger(label: "bench")
logger.logLevel = .critical
var configuration = try Kubeconfig.load(paths: [kubeconfigPath])
configuration.queriesPerSecond = 100_000
configuration.burst = 100_000
let client = try KubernetesClient(configuration: configuration, logger: logger)
for crd in CustomResourceDefinitions.all { _ = try await client.create(try GenericObject(raw: crd), .customResourceDefinitions) }

let baseline = ProcessFigures.memoryMiB("VmRSS")
let clock = ContinuousClock()
let spec = TalosEtcdBackupSpec(
    talosControlPlaneRef: .init(name: "prod-controlplane"),
    backupStorage: BackupStorage(s3: S3Storage(
        bucket: "etcd-backups", region: "eu-central-1",
        accessKeyID: .init(name: "backup-s3", key: "accessKeyID"), secretAccessKey: .init(name: "backup-s3", key: "secretAccessKey"))))
let createStart = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for worker in 0..<8 {
        group.addTask {
            for index in stride(from: worker, to: objectCount, by: 8) {
                let backup = TalosEtcdBackup(metadata: ObjectMeta(name: "backup-\(index)", namespace: "default"), spec: spec)
                _ = try await client.create(backup, TalosEtcdBackup.resourceType, namespace: "default")
            }
        }
    }
    try await group.waitForAll()
}
let created = clock.now - createStart
print("created \(objectCount) TalosEtcdBackup objects in \(String(format: "%.2f", created.inSeconds)) s (\(Int(Double(objectCount) / created.inSeconds)) creates/s, 8 concurrent clients)")

let informer = Informer<TalosEtcdBackup>(client: client, logger: logger)
let syncStart = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await informer.run() }
    await informer.waitForSync()
    let synced = clock.now - syncStart
    print("informer synced \(informer.cache.count) objects in \(String(format: "%.2f", synced.inSeconds)) s (list pages of 500)")
    print("resident memory: \(String(format: "%.1f", ProcessFigures.memoryMiB("VmRSS"))) MiB with the cache (\(String(format: "%.1f", baseline)) MiB before the objects existed)")
    group.cancelAll()
}
try await client.shutdown()

// Work queue: add, next, done for a million keys, then with 4 workers.
let keys = 1_000_000
let queue = WorkQueue<Int>()
let queueStart = clock.now
for key in 0..<keys { queue.add(key) }
for _ in 0..<keys {
    let key = await queue.next()!
    queue.done(key)
}
let single = clock.now - queueStart
print("work queue, 1 worker: \(Int(Double(keys) / single.inSeconds)) keys/s (add + next + done)")

let shared = WorkQueue<Int>()
let parallelStart = clock.now
await withTaskGroup(of: Void.self) { group in
    group.addTask { for key in 0..<keys { shared.add(key) }; shared.shutDown() }
    for _ in 0..<4 {
        group.addTask { while let key = await shared.next() { shared.done(key) } }
    }
}
let parallel = clock.now - parallelStart
print("work queue, 4 workers and a producer: \(Int(Double(keys) / parallel.inSeconds)) keys/s")
