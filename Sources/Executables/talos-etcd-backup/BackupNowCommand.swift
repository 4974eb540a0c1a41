import ArgumentParser
import Foundation
import KubernetesClient
import Logging
import CustomResources
import Timestamps

/// `backup-now`: one backup from a schedule's template now, as `kubectl create job
/// --from=cronjob/NAME` does for a CronJob: it sets the schedule's
/// `talos.alperen.cloud/backup-now` annotation to a new value, and the operator creates
/// `<schedule>-manual-<unix seconds>`. With `--wait` it follows that backup to the end.
struct BackupNowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup-now",
        abstract: "Take a backup now from a schedule's template (sets the talos.alperen.cloud/backup-now annotation).",
        discussion: """
            The operator answers each new value of the annotation with one backup named \
            <schedule>-manual-<unix seconds>, labelled, owned and retained like the scheduled ones \
            (it never counts as the schedule's lastScheduleTime). With --wait the command follows \
            that backup until it Succeeded (exit 0) or Failed (exit 1, with the reason), for at \
            most --timeout seconds (exit 1 when they run out; the backup goes on).
            """)

    @Argument(help: "Name of the TalosEtcdBackupSchedule.")
    var schedule: String

    @Option(name: [.customShort("n"), .long], help: "Namespace of the schedule (default: the kubeconfig context's namespace).")
    var namespace: String?

    @Option(help: "kubeconfig file (default: $KUBECONFIG, the in-cluster service account, or ~/.kube/config).")
    var kubeconfig: String?

    @Flag(help: "Follow the backup until it Succeeded or Failed.")
    var wait = false

    @Option(help: "With --wait: give up after this many seconds.")
    var timeout: Int = 3600

    func run() async throws {
        do {
            let configuration = try KubernetesConfiguration.load(kubeconfig: kubeconfig)
            let namespace = self.namespace ?? configuration.namespace
            let client = try KubernetesClient(configuration: configuration, logger: Logger(label: "backup-now"))
            do {
                try await request(client, namespace: namespace)
                try? await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    private func request(_ client: KubernetesClient, namespace: String) async throws {
        let value = RFC3339.format(Date(), fractionDigits: 6)
        do {
            let patch = JSONValue.object(["metadata": .object(["annotations": .object([TalosEtcdBackupSchedule.backupNowAnnotation: .string(value)])])])
            _ = try await client.patch(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: namespace,
                                       name: schedule, mergePatch: patch, subresource: nil)
        } catch let error as KubernetesError where error.isNotFound {
            throw RestoreProblem("TalosEtcdBackupSchedule \(namespace)/\(schedule) not found")
        }
        print("requested a backup of schedule \(namespace)/\(schedule) (\(TalosEtcdBackupSchedule.backupNowAnnotation)=\(value))")
        guard wait else { return }
        let deadline = ContinuousClock.now + .seconds(timeout)
        var announced: String?
        while ContinuousClock.now < deadline {
            let backups = try await client.listAll(
                TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace,
                options: ListOptions(labelSelector: "\(TalosEtcdBackupSchedule.backupScheduleLabel)=\(schedule)")).items
            if let backup = backups.first(where: { $0.metadata.annotations?[TalosEtcdBackupSchedule.backupNowRequestAnnotation] == value }) {
                let name = backup.metadata.name ?? ""
                if announced == nil {
                    print("backup \(name) created")
                    announced = name
                }
                switch backup.status?.phase {
                case .succeeded:
                    print("backup \(name) Succeeded: \(backup.status?.conditions?[type: ConditionType.ready]?.message ?? "")")
                    return
                case .failed:
                    let failed = backup.status?.conditions?[type: ConditionType.failed]
                    printError("backup \(name) Failed: \(failed?.reason ?? "unknown"): \(failed?.message ?? "")")
                    throw ExitCode(1)
                default:
                    break
                }
            }
            try await Task.sleep(for: .seconds(1))
        }
        if let announced {
            printError("gave up waiting after \(timeout) s: backup \(announced) has not finished (it goes on; kubectl get teb -n \(namespace) \(announced))")
        } else {
            printError("gave up waiting after \(timeout) s: no backup was created for the request; is the operator running, and is the schedule valid (kubectl describe tebs -n \(namespace) \(schedule))?")
        }
        throw ExitCode(1)
    }
}
