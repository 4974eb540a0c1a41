import ArgumentParser

/// The `talos-etcd-backup` executable: the operator and its offline helpers.
@main
struct TalosEtcdBackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "talos-etcd-backup",
        abstract: "Scheduled etcd backups of Talos Linux control planes into S3-compatible storage.",
        subcommands: [RunCommand.self, SnapshotCommand.self, NextRunsCommand.self, CRDsCommand.self]
    )
}
