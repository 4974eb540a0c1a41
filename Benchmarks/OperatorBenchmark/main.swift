import BenchmarkSupport
import Foundation
import KubernetesClient
import CustomResources

// The control-plane target of docs/design.md, Targets: 1,000 schedules in 100 namespaces.
//   OperatorBenchmark setup KUBECONFIG            CRDs, 100 namespaces, 1,000 `*/2 * * * *` schedules
//   OperatorBenchmark measure KUBECONFIG PID      the operator (process PID) with them: time to
//                                                 reconcile all, resident memory, CPU while idle
//                                                 between ticks, and how long after its scheduled
//                                                 time each backup of the next tick was created;
//                                                 with TICKS=N, the memory after N ticks too.
// Run with: scripts/benchmark-operator
/// A line on standard output, written at once (print buffers when the output is a file).
func report(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let mode = CommandLine.arguments[1]
let client = try KubernetesClient(configuration: Kubeconfig.load(paths: [CommandLine.arguments[2]]))
let namespaces = 100, perNamespace = 10

func schedules() async throws -> [TalosEtcdBackupSchedule] {
    try await client.listAll(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, options: ListOptions(limit: 500)).items
}

/// Resident set (VmRSS), its anonymous part (the heap and stacks: RssAnon) and its file-backed
/// part (the binary's and shared libraries' pages in use: RssFile), and the peak (VmHWM) of
/// `pid` in MiB, and its CPU seconds (user + system).
func processFigures(_ pid: String) -> (rss: Double, anonymous: Double, file: Double, peak: Double, cpu: Double) {
    (ProcessFigures.memoryMiB("VmRSS", pid: pid), ProcessFigures.memoryMiB("RssAnon", pid: pid), ProcessFigures.memoryMiB("RssFile", pid: pid),
     ProcessFigures.memoryMiB("VmHWM", pid: pid), ProcessFigures.cpuSeconds(pid: pid))
}

switch mode {
case "setup":
    for crd in CustomResourceDefinitions.all {
        _ = try await client.create(try GenericObject(raw: crd), .customResourceDefinitions)
    }
    // No talosconfig Secret exists for control plane "bench": each backup fails with
    // TalosConfigNotFound (one Secret GET per attempt, no Talos, no S3), retried after 10 s and
    // 20 s, and is Failed 30 s after its tick: what is measured is the control plane, and
    // Forbid never holds a run. Schedules run every two minutes (`*/2 * * * *`), so the
    // retries are over well before the idle window.
    let spec = TalosEtcdBackupSpec(
        talosControlPlaneRef: .init(name: "bench"),
        backupStorage: BackupStorage(
            s3: S3Storage(
                bucket: "etcd-backups", region: "us-east-1", accessKeyID: .init(name: "s3", key: "id"),
                secretAccessKey: .init(name: "s3", key: "secret"), endpoint: "http://127.0.0.1:1", insecureHTTP: true)))
    try await withThrowingTaskGroup(of: Void.self) { group in
        for n in 0..<namespaces {
            group.addTask {
                let namespace = "team-\(n)"
                _ = try await client.create(try GenericObject(raw: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)]]), .namespaces)
                for s in 0..<perNamespace {
                    let schedule = TalosEtcdBackupSchedule(
                        metadata: ObjectMeta(name: "schedule-\(s)", namespace: namespace),
                        spec: TalosEtcdBackupScheduleSpec(schedule: "*/2 * * * *", backupTemplate: BackupTemplate(spec: spec), retention: 1,
                                                          failedBackupsHistoryLimit: 1))
                    _ = try await client.create(schedule, TalosEtcdBackupSchedule.resourceType, namespace: namespace)
                }
            }
        }
        try await group.waitForAll()
    }
    report("created \(namespaces * perNamespace) schedules in \(namespaces) namespaces")

case "measure":
    let pid = CommandLine.arguments[3]
    let clock = ContinuousClock()
    let start = clock.now
    // Bounded, and a schedule the operator refuses ends the run with its reason: a benchmark
    // whose schedules are invalid measures nothing.
    while true {
        let all = try await schedules()
        for schedule in all {
            let conditions: [Condition] = schedule.status?.conditions ?? []
            if let failed = conditions.first(where: { condition in condition.type == "Failed" && condition.status == .true }) {
                let name = "\(schedule.metadata.namespace ?? "")/\(schedule.metadata.name ?? "")"
                fatalError("schedule \(name) was refused: \(failed.reason): \(failed.message)")
            }
        }
        if all.filter({ $0.status?.nextScheduleTime != nil }).count == namespaces * perNamespace { break }
        guard clock.now - start < .seconds(120) else { fatalError("not every schedule was reconciled within 120 s") }
        try await Task.sleep(for: .milliseconds(200))
    }
    report("all \(namespaces * perNamespace) schedules reconciled \(clock.now - start) after the operator started")
    // The first tick at least 5 s away: every schedule's backup, and how late each was
    // created (whole seconds, the resolution of creationTimestamp).
    let tick = (Int(Date().timeIntervalSince1970 + 5) / 120 + 1) * 120
    // Listing 1,000 backups loads the API server, which shares the cores: look only after the
    // tick, every two seconds.
    try await Task.sleep(for: .seconds(max(0, Double(tick) - Date().timeIntervalSince1970)))
    var backups: [TalosEtcdBackup] = []
    while backups.count < namespaces * perNamespace, Int(Date().timeIntervalSince1970) < tick + 30 {
        try await Task.sleep(for: .seconds(2))
        backups = try await client.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, options: ListOptions(limit: 500)).items
            .filter { $0.metadata.name?.hasSuffix("-\(tick)") == true }
    }
    var histogram: [Int: Int] = [:]
    for backup in backups {
        if let created = backup.metadata.creationTimestamp { histogram[Int(created.date.timeIntervalSince1970) - tick, default: 0] += 1 }
    }
    report("backups for the tick at \(KubeTime(Date(timeIntervalSince1970: TimeInterval(tick)))): \(backups.count) of \(namespaces * perNamespace); "
          + "seconds after the scheduled time: " + histogram.sorted { $0.key < $1.key }.map { "\($0.key) s: \($0.value)" }.joined(separator: ", "))
    // Idle: from 70 s to 90 s after the tick (ticks are two minutes apart), when that tick's
    // work, third attempts (30 s after the first) included, is done.
    try await Task.sleep(for: .seconds(max(0, Double(tick + 70) - Date().timeIntervalSince1970)))
    let before = processFigures(pid)
    try await Task.sleep(for: .seconds(20))
    let after = processFigures(pid)
    report(String(format: "idle between ticks: %.2f%% of one core over 20 s; resident %.1f MiB (anonymous %.1f, file-backed %.1f), peak %.1f MiB",
                 (after.cpu - before.cpu) / 20 * 100, after.rss, after.anonymous, after.file, after.peak))
    // TICKS=N: the resident memory 90 s after each of the next ticks too, to see where it settles.
    let ticks = Int(ProcessInfo.processInfo.environment["TICKS"] ?? "") ?? 1
    for n in stride(from: 2, through: ticks, by: 1) {
        try await Task.sleep(for: .seconds(max(0, Double(tick + (n - 1) * 120 + 90) - Date().timeIntervalSince1970)))
        let figures = processFigures(pid)
        report(String(format: "tick %d: resident %.1f MiB (anonymous %.1f, file-backed %.1f)", n, figures.rss, figures.anonymous, figures.file))
    }
default:
    fatalError("mode: setup or measure")
}
try await client.shutdown()
