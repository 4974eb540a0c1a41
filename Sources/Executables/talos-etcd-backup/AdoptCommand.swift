import ArgumentParser
import BackupOperator
import BackupResolution
import Foundation
import KubernetesClient
import Logging

/// `adopt`: `TalosEtcdBackup` objects for what a schedule's key prefix already holds
/// (``BackupAdoption``), after the management cluster was restored or replaced.
struct AdoptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adopt",
        abstract: "Create TalosEtcdBackup objects for the backups a schedule's key prefix already holds in the bucket.",
        discussion: """
            Lists the objects under the schedule's key prefix (<prefix>/<namespace>/<controlplane>/, \
            from its backupTemplate, with the S3 credentials its Secrets hold) and, for each named \
            as the schedule names its backups (<schedule>-<unix seconds>, or \
            <schedule>-manual-<unix seconds>, then .db, .db.zst, .db.age or .db.zst.age) that has \
            no backup yet, creates one: labelled and owned like the scheduled ones, Succeeded, its \
            status from the object's metadata (reason Adopted). Retention then counts them, and \
            restore/verify --backup read them. Idempotent; never writes to the bucket.
            """)

    @Option(help: "Name of the TalosEtcdBackupSchedule whose objects to adopt.")
    var schedule: String

    @Option(name: [.customShort("n"), .long], help: "Namespace of the schedule (default: the kubeconfig context's namespace).")
    var namespace: String?

    @Option(help: "kubeconfig file (default: $KUBECONFIG, the in-cluster service account, or ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "Give up after this many seconds (the backups adopted by then stay; run adopt again to go on).")
    var timeoutSeconds: Int = Int(BackupAdoption.defaultTimeLimit.components.seconds)

    func validate() throws {
        guard (1...604_800).contains(timeoutSeconds) else { throw ValidationError("--timeout-seconds must be between 1 and 604800 (a week)") }
    }

    func run() async throws {
        do {
            let configuration = try KubernetesConfiguration.load(kubeconfig: kubeconfig)
            let namespace = self.namespace ?? configuration.namespace
            let client = try KubernetesClient(configuration: configuration, logger: Logger(label: "adopt"))
            let outcome: BackupAdoption.Outcome
            do {
                outcome = try await BackupAdoption(client: client, secrets: KubernetesSecretReader(client: client), logger: Logger(label: "adopt"))
                    .adopt(schedule: schedule, namespace: namespace, now: Date(), within: .seconds(timeoutSeconds))
                try? await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
            for name in outcome.adopted { print("adopted \(namespace)/\(name)") }
            for name in outcome.present { print("already present: \(namespace)/\(name)") }
            for (key, name) in outcome.states.sorted(by: { $0.key < $1.key }) { print("state of \(namespace)/\(name): \(key)") }
            for (key, why) in outcome.skipped.sorted(by: { $0.key < $1.key }) { print("skipped \(key): \(why)") }
            print("\(outcome.adopted.count) adopted, \(outcome.present.count) already present, \(outcome.skipped.count) skipped")
        } catch let error as KubernetesError where error.isNotFound {
            printError("error: TalosEtcdBackupSchedule \(namespace ?? "")/\(schedule) not found: \(error)")
            throw ExitCode(1)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
