import AllocatorSettings
import ArgumentParser
import Foundation

/// The `talos-etcd-backup` executable: the operator and its offline helpers.
@main
struct TalosEtcdBackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "talos-etcd-backup",
        abstract: "Scheduled etcd backups of Talos Linux control planes into S3-compatible storage.",
        version: OperatorVersion.current,
        subcommands: [RunCommand.self, SnapshotCommand.self, BackupNowCommand.self, AdoptCommand.self, RestoreCommand.self, VerifyCommand.self, RecoverCommand.self, NextRunsCommand.self, CRDsCommand.self]
    )

    /// For `run`, sets the operator's malloc settings first, while the main thread is the only
    /// one that has allocated (``AllocatorSettings`` says why; `run` logs what it set).
    static func main() async {
        if CommandLine.arguments.dropFirst().first == "run" {
            AllocatorSettings.apply(for: ProcessInfo.processInfo.environment)
        }
        await main(nil)
    }
}

/// The release this binary is: `--version` prints it, the image is tagged with it, and
/// `deploy/default` installs the image of this tag (a test keeps the three equal).
enum OperatorVersion {
    static let current = "0.1.0"
}
