import AllocatorSettings
import ArgumentParser
import BackupOperator
import BackupResolution
import ControllerRuntime
import EndpointPolicy
import OperatorEndpoints
import Foundation
import KubernetesClient
import Logging
import S3
import ServiceLifecycle

/// `run`: the operator. Both controllers against the kubeconfig (or the in-cluster service
/// account), behind a Lease unless `--leader-elect=false`, until SIGTERM.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the operator: the TalosEtcdBackupSchedule and TalosEtcdBackup controllers.",
        discussion: """
            Configuration: --kubeconfig, else $KUBECONFIG, else the in-cluster service account, else \
            ~/.kube/config. With leader election (the default) only the replica holding the Lease \
            acts. SIGTERM or SIGINT stops taking work, aborts in-flight uploads (no parts are left \
            behind; the backup runs again on the next leader) and releases the Lease; whatever is \
            not done after --shutdown-grace-period-seconds is abandoned and the process exits \
            (status 1). A replica that cannot renew its Lease within the renew deadline (2/3 of \
            the lease duration) stops acting and exits with status 1 within 5 seconds more, so \
            that it is restarted, as controller-runtime's managers do.
            """)

    @Option(help: "kubeconfig file (default: $KUBECONFIG, the in-cluster service account, or ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "kubeconfig context (default: the current context).")
    var context: String?

    @Option(help: "Watch only this namespace (default: all namespaces).")
    var namespace: String?

    @Option(help: "Hold a Lease so that only one replica acts: true or false.")
    var leaderElect: Bool = true

    @Option(help: "Namespace of the Lease (default: $POD_NAMESPACE, else --namespace, else the configuration's namespace).")
    var leaderElectionNamespace: String?

    @Option(help: "Name of the Lease.")
    var leaderElectionID: String = "talos-etcd-backup"

    @Option(help: "Seconds a Lease lasts without renewal before another replica may take it.")
    var leaseDurationSeconds: Int = 15

    @Option(help: "Seconds a stop (SIGTERM, SIGINT, a lost Lease) may take to release the Lease and abort uploads before the process exits anyway.")
    var shutdownGracePeriodSeconds: Int = 10

    @Option(help: "Seconds a deleted backup waits for a stored object that the store refuses to delete (credentials or bucket gone, access denied) before it goes anyway, leaving the object and a Warning Event ObjectLeftInStore.")
    var objectDeletionTimeoutSeconds: Int = 600

    @Option(help: "Backups taken at the same time.")
    var maxConcurrentBackups: Int = 2

    @Option(help: "Backups of one namespace taken at the same time (default: one less than --max-concurrent-backups, at least 1, so that one namespace's slow backups never hold every worker; with --namespace, all of them).")
    var maxConcurrentBackupsPerNamespace: Int?

    @Option(help: "Seconds one backup attempt may take, Secrets to stored record; past it the attempt is cancelled, its upload aborted, and it fails with AttemptTimedOut (retried like other failures).")
    var backupAttemptTimeoutSeconds: Int = 3600

    @Option(help: "How fast verifications (a schedule's spec.verification) may read stored objects, in MiB per second, all together; one verification runs at a time, apart from the backup workers.")
    var verificationBandwidth: Int = VerificationReconciler.defaultBandwidth >> 20

    @Option(help: "Networks no backup may reach, comma-separated (ADDRESS/PREFIX or an address; \"\" for none): an S3 endpoint or talosconfig endpoint resolving into one fails with EndpointNotAllowed. The default: the link-local networks and the known cloud metadata addresses.")
    var deniedEndpointNetworks: String = EndpointPolicy.defaultDeniedText

    @Option(help: "If set, the only S3 endpoints backups may use, comma-separated: networks, host names, or suffixes such as .example.com (AWS is s3.REGION.amazonaws.com).")
    var allowedS3Endpoints: String?

    @Option(help: "If set, the only Talos endpoints backups may use, comma-separated: networks, host names, or suffixes such as .example.com.")
    var allowedTalosEndpoints: String?

    @Option(help: "Namespaces whose backups may name no S3 keys and use the operator's own credentials (web identity, a container credentials endpoint, or AWS_ACCESS_KEY_ID, from its environment): *, names separated by commas, or a namespace label selector (needs list on namespaces). Unset: none may; such a backup fails with CredentialsNotFound.")
    var ambientS3CredentialsNamespaces: String?

    @Option(name: .customLong("kube-api-qps"), help: "Client-side limit on requests per second to the API server (sustained).")
    var kubeAPIQPS: Double = 300

    @Option(name: .customLong("kube-api-burst"), help: "Client-side limit on requests to the API server (burst).")
    var kubeAPIBurst: Int = 3000

    @Option(help: "Address of /healthz and /readyz: host:port, :port (every interface), or 0 to disable.")
    var healthProbeBindAddress: String = ":8081"

    @Option(help: "Address of /metrics (Prometheus text format): host:port, :port (every interface), or 0 to disable.")
    var metricsBindAddress: String = ":8080"

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "text or json.")
    var logFormat: LogFormat = .text

    // For tests: a clock that runs `clockScale` times faster from `clockEpoch` on, so a
    // `* * * * *` schedule ticks every few real seconds. Not for production use.
    @Option(help: .hidden)
    var clockScale: Double = 1

    @Option(help: .hidden)
    var clockEpoch: String?

    func validate() throws {
        guard maxConcurrentBackups >= 1 else { throw ValidationError("--max-concurrent-backups must be at least 1") }
        if let perNamespace = maxConcurrentBackupsPerNamespace, !(1...maxConcurrentBackups).contains(perNamespace) {
            throw ValidationError("--max-concurrent-backups-per-namespace must be between 1 and --max-concurrent-backups (\(maxConcurrentBackups))")
        }
        guard (1...10_000).contains(verificationBandwidth) else {
            throw ValidationError("--verification-bandwidth must be between 1 and 10000 (MiB per second), not \(verificationBandwidth)")
        }
        guard (60...604_800).contains(backupAttemptTimeoutSeconds) else {
            throw ValidationError("--backup-attempt-timeout-seconds must be between 60 and 604800 (a week)")
        }
        guard kubeAPIQPS > 0, kubeAPIBurst >= 1 else { throw ValidationError("--kube-api-qps and --kube-api-burst must be positive") }
        guard leaseDurationSeconds >= 3 else { throw ValidationError("--lease-duration-seconds must be at least 3") }
        guard objectDeletionTimeoutSeconds >= 0 else { throw ValidationError("--object-deletion-timeout-seconds must not be negative") }
        guard shutdownGracePeriodSeconds >= 1 else { throw ValidationError("--shutdown-grace-period-seconds must be at least 1") }
        _ = try endpointGuard()
        if let namespaces = ambientS3CredentialsNamespaces {
            do { _ = try AmbientS3Access.Namespaces(parsing: namespaces) } catch { throw ValidationError("\(error)") }
        }
        guard clockScale >= 1 else { throw ValidationError("--clock-scale must be at least 1") }
        guard BindAddress(parsing: healthProbeBindAddress) != nil else {
            throw ValidationError("--health-probe-bind-address must be host:port, :port or 0, not \"\(healthProbeBindAddress)\"")
        }
        guard BindAddress(parsing: metricsBindAddress) != nil else {
            throw ValidationError("--metrics-bind-address must be host:port, :port or 0, not \"\(metricsBindAddress)\"")
        }
    }

    /// The endpoint policies the flags give.
    func endpointGuard() throws -> EndpointGuard {
        do {
            let denied = try EndpointPolicy.networks(deniedEndpointNetworks, flag: "--denied-endpoint-networks")
            return EndpointGuard(
                s3: EndpointPolicy(denied: denied, allowed: try allowedS3Endpoints.map { try EndpointPolicy.rules($0, flag: "--allowed-s3-endpoints") }),
                talos: EndpointPolicy(denied: denied, allowed: try allowedTalosEndpoints.map { try EndpointPolicy.rules($0, flag: "--allowed-talos-endpoints") }))
        } catch let error as EndpointPolicyError {
            throw ValidationError(error.description)
        }
    }

    /// The operator's own S3 credentials for the namespaces the option names, looked for only
    /// when it is set. Set without credentials in the environment, or with a selector the API
    /// server refuses, it stops the start: a backup would only find out later.
    func ambientAccess(client: KubernetesClient, logger: Logger) async throws -> AmbientS3Access {
        guard let text = ambientS3CredentialsNamespaces else { return .off }
        let found: AmbientCredentials?
        do {
            found = try AmbientCredentials.fromEnvironment(ProcessInfo.processInfo.environment)
        } catch {
            logger.critical("cannot use the ambient S3 credentials: \(error)")
            throw ExitCode(1)
        }
        guard let found else {
            logger.critical("--ambient-s3-credentials-namespaces is set, but the environment names no S3 credentials (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, AWS_CONTAINER_CREDENTIALS_FULL_URI, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
            throw ExitCode(1)
        }
        let access = AmbientS3Access(credentials: found, namespaces: try AmbientS3Access.Namespaces(parsing: text), kubernetes: client)
        do {
            try await access.checkSelector()
        } catch {
            logger.critical("--ambient-s3-credentials-namespaces: \(error)")
            throw ExitCode(1)
        }
        logger.info("ambient S3 credentials", metadata: ["source": "\(found.summary)", "namespaces": "\(text)"])
        return access
    }

    func run() async throws {
        LoggingSetup.bootstrap(level: logLevel, format: logFormat)
        let logger = Logger(label: "talos-etcd-backup")
        // The malloc settings main() applied before anything else ran (AllocatorSettings).
        let malloc = AllocatorSettings.lastApplied
        logger.info("malloc settings", metadata: ["set": "\(malloc.set)", "refused": "\(malloc.refused)"])

        var configuration: KubernetesConfiguration
        do {
            configuration = try KubernetesConfiguration.load(kubeconfig: kubeconfig, kubeconfigContext: context)
        } catch {
            logger.critical("cannot load the Kubernetes configuration: \(error)")
            throw ExitCode(1)
        }
        configuration.queriesPerSecond = kubeAPIQPS
        configuration.burst = kubeAPIBurst
        let client = try KubernetesClient(configuration: configuration, logger: logger)

        var clock = OperatorClock.system
        if clockScale > 1 {
            guard let epoch = clockEpoch.flatMap(KubeTime.parse) else {
                logger.critical("--clock-scale needs --clock-epoch (RFC 3339)")
                throw ExitCode(1)
            }
            clock = OperatorClock(epoch: epoch, scale: clockScale)
            logger.warning("test clock: \(clockScale) times real time from \(KubeTime(epoch))")
        }
        var election: LeaderElector.Configuration?
        if leaderElect {
            let leaseNamespace = leaderElectionNamespace ?? ProcessInfo.processInfo.environment["POD_NAMESPACE"] ?? namespace ?? configuration.namespace
            let duration = Duration.seconds(leaseDurationSeconds)
            election = LeaderElector.Configuration(
                leaseName: leaderElectionID, namespace: leaseNamespace,
                leaseDuration: duration, renewDeadline: duration * 2 / 3, retryPeriod: duration / 5)
        }
        let grace = Duration.seconds(shutdownGracePeriodSeconds)
        let deadline = ProcessDeadline(logger: logger)
        var options = TalosBackupOperator.Options(
            namespace: namespace, maxConcurrentBackups: maxConcurrentBackups, leaderElection: election, clock: clock,
            onLeadershipLost: { deadline.arm(after: min(grace, .seconds(5)), status: 1, reason: "stopping after the lost lease") })
        options.objectDeletionTimeout = TimeInterval(objectDeletionTimeoutSeconds)
        options.maxConcurrentBackupsPerNamespace = maxConcurrentBackupsPerNamespace
        options.backupAttemptTimeout = .seconds(backupAttemptTimeoutSeconds)
        options.verificationBandwidth = verificationBandwidth << 20
        options.endpoints = try endpointGuard()
        options.ambientCredentials = try await ambientAccess(client: client, logger: logger)
        let metrics = BindAddress(parsing: metricsBindAddress).flatMap { address -> (DescribedMetricsFactory, String, Int)? in
            guard case .address(let host, let port) = address else { return nil }
            return (DescribedMetricsFactory(families: ControllerRuntimeMetrics.families + BackupMetrics.families), host, port)
        }
        if let (factory, _, _) = metrics { options.metrics = factory }
        let backupOperator = TalosBackupOperator(client: client, options: options, logger: logger)
        if let (factory, host, port) = metrics {
            backupOperator.manager.add(MetricsServer(
                host: host, port: port, registry: factory.registry,
                onListening: { port in logger.info("metrics listening", metadata: ["address": "\(host):\(port)"]) }, logger: logger))
        }
        if case .address(let host, let port)? = BindAddress(parsing: healthProbeBindAddress) {
            let manager = backupOperator.manager
            backupOperator.manager.add(HealthProbeServer(
                host: host, port: port, liveness: { manager.livenessProblem }, readiness: { manager.readinessProblem },
                onListening: { port in logger.info("health probes listening", metadata: ["address": "\(host):\(port)"]) }, logger: logger))
        }
        // One flat group: the manager's services (metrics, health, informers, controllers, its
        // lifecycle), shut down last to first on SIGTERM or SIGINT within the grace bound.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: backupOperator.manager.serviceConfigurations(onGracefulShutdown: {
                deadline.arm(after: grace, status: 1, reason: "the shutdown")
            }),
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("stopped: \(error)")
            deadline.arm(after: grace, status: 1, reason: "the shutdown")
            try? await client.shutdown()
            throw ExitCode(1)
        }
        try? await client.shutdown()
        logger.info("stopped")
    }
}
