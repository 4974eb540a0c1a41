import BackupResolution
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import Logging
import Metrics
import ServiceLifecycle
import SnapshotPipeline
import Waiting

/// The operator: a ``Manager`` with one informer each for schedules and backups, shared by
/// both controllers, optionally behind a Lease so that of several replicas only one acts.
/// `talos-etcd-backup run` builds one and runs its manager's services in the process's one
/// `ServiceGroup`.
///
/// A graceful shutdown (SIGTERM) or cancellation of ``run()`` stops taking work, aborts
/// in-flight uploads (no parts left behind: the uploader aborts on cancellation) and releases
/// the lease, so another replica takes over at once.
public struct TalosBackupOperator: Sendable {
    /// What `talos-etcd-backup run`'s options decide.
    public struct Options: Sendable {
        /// Watch only this namespace; nil watches all.
        public var namespace: String?
        /// Backups taken at the same time (workers of the backup controller).
        public var maxConcurrentBackups: Int
        /// Backups of one namespace taken at the same time; nil: one less than
        /// ``maxConcurrentBackups`` (at least 1), so that one namespace whose backups are slow
        /// (a store or node that trickles) never holds every worker; all of them when the
        /// operator watches one ``namespace`` only (there is nobody to share with).
        public var maxConcurrentBackupsPerNamespace: Int?
        /// How long one backup attempt may take (``BackupReconciler/defaultAttemptTimeout``).
        public var backupAttemptTimeout: Duration = BackupReconciler.defaultAttemptTimeout
        /// Which S3 and Talos hosts backups may use (by default: none in the link-local range).
        public var endpoints = EndpointGuard()
        /// Lease to hold while acting; nil runs without leader election.
        public var leaderElection: LeaderElector.Configuration?
        public var clock: OperatorClock
        public var transfer: any SnapshotTransfer
        /// Called as soon as the lease is lost, before in-flight work has wound down.
        public var onLeadershipLost: @Sendable () -> Void
        /// How long a deleted backup waits for an object the store refuses to delete.
        public var objectDeletionTimeout: TimeInterval = BackupReconciler.defaultObjectDeletionTimeout
        /// Where controller-runtime's and the operator's metrics go (``BackupMetrics``).
        public var metrics: any MetricsFactory = NOOPMetricsHandler.instance
        /// How fast verifications may read stored objects, in bytes per second, all together.
        public var verificationBandwidth: Int = VerificationReconciler.defaultBandwidth
        /// The operator's own S3 credentials and the namespaces whose backups may use them.
        public var ambientCredentials: AmbientS3Access = .off

        /// The cap on one namespace's backup workers that applies.
        var backupWorkersPerNamespace: Int {
            let reserve = namespace == nil ? 1 : 0
            return min(maxConcurrentBackups, maxConcurrentBackupsPerNamespace ?? max(1, maxConcurrentBackups - reserve))
        }

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
    /// second (docs/design.md, Targets; `scripts/benchmark-operator`).
    static let scheduleWorkers = 32

    /// What runs: the informers, the two controllers, leader election; add services (metrics,
    /// health) to it before ``run()``.
    public let manager: Manager

    public init(client: any KubernetesAPI, options: Options, logger: Logger = Logger(label: TalosBackupOperator.name)) {
        let manager = Manager(client: client, configuration: .init(
            namespace: options.namespace, leaderElection: options.leaderElection, onLeadershipLost: options.onLeadershipLost,
            metrics: options.metrics), logger: logger)
        let metrics = BackupMetrics(factory: options.metrics)
        // Events about objects in a namespace being deleted go to the operator's own Lease.
        let fallback = options.leaderElection.map {
            EventRecorder.Regarding(apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: $0.namespace, name: $0.leaseName, uid: nil)
        }
        let events = EventRecorder(client: client, reportingController: "talos.alperen.cloud/\(Self.name)", reportingInstance: manager.identity,
                                   fallback: fallback, logger: logger)
        manager.add(events)  // sends the Events the reconcilers queue, and drains them last on shutdown
        let schedules = manager.informer(TalosEtcdBackupSchedule.self)
        let backups = manager.informer(TalosEtcdBackup.self)

        manager.add(Controller(
            name: "talosetcdbackup", primary: backups, filter: .specOrMetadataChanged,
            reconciler: BackupReconciler(backups: ObjectClient(api: client, informer: backups), secrets: KubernetesSecretReader(client: client),
                                         ambientCredentials: options.ambientCredentials,
                                         transfer: options.transfer, events: events, clock: options.clock, instance: manager.identity,
                                         objectDeletionTimeout: options.objectDeletionTimeout, attemptTimeout: options.backupAttemptTimeout,
                                         endpoints: options.endpoints, metrics: metrics, logger: logger),
            workers: options.maxConcurrentBackups, maxWorkersPerNamespace: options.backupWorkersPerNamespace,
            metrics: options.metrics, logger: logger))
        manager.add(Controller(
            name: "talosetcdbackupschedule", primary: schedules, filter: .specOrMetadataChanged,
            reconciler: ScheduleReconciler(schedules: ObjectClient(api: client, informer: schedules), backups: ObjectClient(api: client, informer: backups), events: events,
                                           clock: options.clock, metrics: metrics, logger: logger),
            workers: Self.scheduleWorkers, metrics: options.metrics, logger: logger
        ).owning(backups, filter: Self.backupOutcomeChanged))
        // Verification: one worker, paced, apart from the backup workers. A backup is looked at
        // when the informer finds it or it succeeds, and when its schedule starts a
        // verification run (its lastVerificationTime moves).
        let backupClient = ObjectClient(api: client, informer: backups)
        manager.add(Controller(
            name: "talosetcdbackupverification", primary: backups,
            filter: EventFilter(passesAddition: { $0.status?.phase == .succeeded },
                                passesUpdate: { old, new in old.status?.phase != .succeeded && new.status?.phase == .succeeded }),
            reconciler: VerificationReconciler(backups: backupClient, schedules: ObjectClient(api: client, informer: schedules),
                                               secrets: KubernetesSecretReader(client: client), ambientCredentials: options.ambientCredentials,
                                               transfer: options.transfer,
                                               bandwidth: BandwidthLimit(bytesPerSecond: options.verificationBandwidth), events: events,
                                               clock: options.clock, endpoints: options.endpoints, metrics: metrics,
                                               timeout: options.backupAttemptTimeout, logger: logger),
            workers: 1, metrics: options.metrics, logger: logger
        ).watching(schedules, filter: EventFilter(passesAddition: { $0.status?.lastVerificationTime != nil },
                                                  passesUpdate: { old, new in old.status?.lastVerificationTime != new.status?.lastVerificationTime })) { schedule in
            VerificationReconciler.backups(of: schedule, in: backupClient)
        })
        self.manager = manager
    }

    /// The changes of a backup its schedule acts on: its outcome (Succeeded or Failed: a
    /// finished backup frees a held run, counts for retention and for
    /// `lastSuccessfulBackupTime`), a phase leaving an outcome (written by hand), the start of its
    /// deletion, and its deletion. Its creation (the schedule made it, and knows), its start and
    /// its status writes during an attempt do not wake the schedule: two schedule reconciles per
    /// scheduled backup, the tick and the outcome. A backup the informer finds already finished
    /// (on start, or adopted) passes, and so does a new verification result (for the
    /// schedule's counts).
    static var backupOutcomeChanged: EventFilter<TalosEtcdBackup> {
        EventFilter(
            passesAddition: { $0.status?.phase?.isFinished == true },
            passesUpdate: { old, new in
                (old.status?.phase != new.status?.phase && (old.status?.phase?.isFinished == true || new.status?.phase?.isFinished == true))
                    || (old.metadata.deletionTimestamp == nil) != (new.metadata.deletionTimestamp == nil)
                    || old.status?.verification?.result != new.status?.verification?.result
                    || old.status?.lastVerifiedTime != new.status?.lastVerifiedTime
            })
    }

    /// Runs the manager's services as a group of their own until cancelled or shut down
    /// gracefully (tests); throws `LeaderElector.LeadershipLost` if the lease is lost (the
    /// process should exit and be restarted, as controller-runtime does).
    public func run() async throws {
        try await manager.run()
    }
}
