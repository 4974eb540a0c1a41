import ControllerRuntime
import Foundation
import KubernetesClient
import Logging
import TalosBackupAPI

/// The operator: both controllers over one Kubernetes client, optionally behind a Lease so
/// that of several replicas only one acts. `talos-etcd-backup run` builds one and runs it.
///
/// Cancelling ``run()`` (SIGTERM) stops taking work, aborts in-flight uploads (no parts left
/// behind: the uploader aborts on cancellation) and releases the lease, so another replica
/// takes over at once.
public struct BackupOperator: Sendable {
    /// What `talos-etcd-backup run`'s options decide.
    public struct Options: Sendable {
        /// Watch only this namespace; nil watches all.
        public var namespace: String?
        /// Backups taken at the same time (workers of the backup controller).
        public var maxConcurrentBackups: Int
        /// Lease to hold while acting; nil runs without leader election.
        public var leaderElection: LeaderElector.Configuration?
        public var clock: OperatorClock
        public var transfer: any SnapshotTransfer
        /// Called as soon as the lease is lost, before in-flight work has wound down.
        public var onLeadershipLost: @Sendable () -> Void
        /// How long a deleted backup waits for an object the store refuses to delete.
        public var objectDeletionTimeout: TimeInterval = BackupReconciler.defaultObjectDeletionTimeout

        public init(namespace: String? = nil, maxConcurrentBackups: Int = 2, leaderElection: LeaderElector.Configuration? = nil,
                    clock: OperatorClock = .system, transfer: any SnapshotTransfer = TalosToS3Transfer(),
                    onLeadershipLost: @escaping @Sendable () -> Void = {}) {
            self.namespace = namespace
            self.maxConcurrentBackups = maxConcurrentBackups
            self.leaderElection = leaderElection
            self.clock = clock
            self.transfer = transfer
            self.onLeadershipLost = onLeadershipLost
        }
    }

    public static let name = "talos-etcd-backup"
    /// Schedules reconciled at once. A schedule's reconcile is a few API requests, so many
    /// run side by side: 1,000 schedules ticking together must each get their backup within a
    /// second (DESIGN.md section 6; `scripts/benchmark-operator`).
    static let scheduleWorkers = 16

    let client: KubernetesClient
    let options: Options
    let logger: Logger

    public init(client: KubernetesClient, options: Options, logger: Logger = Logger(label: BackupOperator.name)) {
        self.client = client
        self.options = options
        self.logger = logger
    }

    /// Runs until cancelled; throws `LeaderElector.LeadershipLost` if the lease is lost (the
    /// process should exit and be restarted, as controller-runtime does).
    public func run() async throws {
        if let election = options.leaderElection {
            let elector = LeaderElector(client: client, configuration: election, logger: logger)
            try await elector.run(onLeadershipLost: options.onLeadershipLost) { try await runControllers(identity: election.identity) }
        } else {
            try await runControllers(identity: LeaderElector.defaultIdentity())
        }
    }

    private func runControllers(identity: String) async throws {
        // Events about objects in a namespace being deleted go to the operator's own Lease.
        let fallback = options.leaderElection.map {
            EventRecorder.Regarding(apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: $0.namespace, name: $0.leaseName, uid: nil)
        }
        let events = EventRecorder(client: client, reportingController: "talos.alperen.cloud/\(Self.name)", reportingInstance: identity,
                                   fallback: fallback, logger: logger)
        let scheduleInformer = Informer<TalosEtcdBackupSchedule>(client: client, namespace: options.namespace, logger: logger)
        // Two informers over backups: one feeds the backup controller, the other the schedule
        // controller (its cache lists a schedule's backups; their changes wake the schedule).
        let backupInformer = Informer<TalosEtcdBackup>(client: client, namespace: options.namespace, logger: logger)
        let ownedBackupInformer = Informer<TalosEtcdBackup>(client: client, namespace: options.namespace, logger: logger)

        let backupController = Controller(
            name: "talosetcdbackup", primary: backupInformer,
            reconciler: BackupReconciler(client: client, cache: backupInformer.cache, secrets: KubernetesSecretReader(client: client),
                                         transfer: options.transfer, events: events, clock: options.clock, instance: identity,
                                         objectDeletionTimeout: options.objectDeletionTimeout, logger: logger),
            workers: options.maxConcurrentBackups, logger: logger)
        let scheduleController = Controller(
            name: "talosetcdbackupschedule", primary: scheduleInformer,
            reconciler: ScheduleReconciler(client: client, cache: scheduleInformer.cache, backups: ownedBackupInformer.cache, events: events,
                                           clock: options.clock, logger: logger),
            workers: Self.scheduleWorkers, logger: logger
        ).owning(ownedBackupInformer)

        logger.info("starting controllers", metadata: [
            "namespace": "\(options.namespace ?? "(all)")", "maxConcurrentBackups": "\(options.maxConcurrentBackups)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await backupController.run() }
            group.addTask { try await scheduleController.run() }
            try await group.next()
            group.cancelAll()
        }
    }
}
