import KubernetesClient
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Everything a controller process runs, under one swift-service-lifecycle `ServiceGroup`
/// (controller-runtime's manager, kube-rs' `Controller` + shared reflectors):
///
/// ```
///  the process's ServiceGroup (shut down last to first)
///  ├─ added services (metrics, health)          run from start to end
///  ├─ one Informer per kind ──► ObjectCache ──► handlers of every controller that reads the kind
///  ├─ controllers, behind the Lease             run only while leading
///  └─ the manager's lifecycle                   liveness, readiness; hears of a shutdown first
/// ```
///
/// Informers run from the start, leader or not, so a standby has warm caches when it takes
/// over; controllers subscribe to them when they start and begin work only when every
/// informer they read has synced. A graceful shutdown stops the controllers first (in-flight
/// reconciles are cancelled, the Lease is released), then the informers, then the added
/// services. A lost Lease ends ``run()`` with ``LeaderElector/LeadershipLost``.
public final class Manager: Sendable {
    /// Where and how the manager watches and elects.
    public struct Configuration: Sendable {
        /// Watch only this namespace; nil watches all.
        public var namespace: String?
        /// Lease to hold while the controllers run; nil runs them without leader election.
        public var leaderElection: LeaderElector.Configuration?
        /// Called as soon as the Lease is lost, before the controllers have wound down.
        public var onLeadershipLost: @Sendable () -> Void
        /// Where controller-runtime's metrics go (``ControllerRuntimeMetrics``): the manager
        /// records `leader_election_master_status`; give controllers the same factory.
        public var metrics: any MetricsFactory

        public init(namespace: String? = nil, leaderElection: LeaderElector.Configuration? = nil,
                    onLeadershipLost: @escaping @Sendable () -> Void = {}, metrics: any MetricsFactory = NOOPMetricsHandler.instance) {
            self.namespace = namespace
            self.leaderElection = leaderElection
            self.onLeadershipLost = onLeadershipLost
            self.metrics = metrics
        }
    }

    /// An informer, its kind erased, as the manager runs it.
    private struct SharedInformer: Sendable {
        var informer: any Sendable
        var service: any Service
    }

    private struct State {
        var informers: [ObjectIdentifier: SharedInformer] = [:]
        var informerOrder: [ObjectIdentifier] = []
        var controllers: [@Sendable () async throws -> Void] = []
        var services: [any Service] = []
        var started = false
        var running = false
        var shuttingDown = false
    }

    public let client: any KubernetesAPI
    public let configuration: Configuration
    /// Who this process is: the Lease holder identity, Events' reporting instance, a backup's
    /// `status.attemptedBy`.
    public let identity: String
    private let logger: Logger
    private let state = Mutex(State())

    public init(client: any KubernetesAPI, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "manager")) {
        self.client = client
        self.configuration = configuration
        self.identity = configuration.leaderElection?.identity ?? LeaderElector.defaultIdentity()
        self.logger = logger
    }

    /// The one informer of `Object`'s kind in the configured namespace, created on first use.
    /// Everything added before ``run()`` shares it.
    public func informer<Object: KubernetesObject>(_ type: Object.Type = Object.self) -> Informer<Object> {
        state.withLock { state in
            let id = ObjectIdentifier(type)
            if let existing = state.informers[id]?.informer as? Informer<Object> { return existing }
            precondition(!state.started, "informers are added before the manager runs")
            let informer = Informer<Object>(client: client, namespace: configuration.namespace, logger: logger)
            state.informers[id] = SharedInformer(informer: informer, service: InformerService(informer: informer))
            state.informerOrder.append(id)
            return informer
        }
    }

    /// Runs `controller` while this process leads.
    public func add<Primary: KubernetesObject>(_ controller: Controller<Primary>) {
        state.withLock { state in
            precondition(!state.started, "controllers are added before the manager runs")
            state.controllers.append { try await controller.run() }
        }
    }

    /// Runs `service` for the manager's whole life, leader or not (a metrics or health server).
    public func add(_ service: some Service) {
        state.withLock { state in
            precondition(!state.started, "services are added before the manager runs")
            state.services.append(service)
        }
    }

    /// Whether every informer has stored its first list (for a readiness probe).
    public var informersSynced: Bool { unsyncedInformers.isEmpty }

    private var unsyncedInformers: [String] {
        state.withLock { state in
            state.informerOrder.compactMap { state.informers[$0]?.service as? any SyncReporting }
                .filter { !$0.hasSynced }.map(\.kind)
        }
    }

    /// For a liveness probe: nil while the manager runs, else why not.
    public var livenessProblem: String? {
        state.withLock { $0.running } ? nil : "the manager is not running"
    }

    /// For a readiness probe: nil once every informer has synced (on a standby replica too, so
    /// a rolling update of several replicas completes), until a graceful shutdown begins.
    public var readinessProblem: String? {
        if state.withLock({ $0.shuttingDown }) { return "shutting down" }
        if state.withLock({ !$0.running }) { return "the manager is not running" }
        let unsynced = unsyncedInformers
        return unsynced.isEmpty ? nil : "caches not synced yet: " + unsynced.joined(separator: ", ")
    }

    /// Every service of the manager, in start order, for the process's one `ServiceGroup`:
    /// the manager's liveness, the added services, the informers, the controllers (behind the
    /// Lease), and last its readiness (`onGracefulShutdown` runs when a graceful shutdown
    /// begins). The group shuts them down last to first: readiness turns false, the
    /// controllers stop (the Lease is released), then the informers, then the added services.
    /// A lost Lease ends the group with ``LeaderElector/LeadershipLost``.
    public func serviceConfigurations(onGracefulShutdown: @escaping @Sendable () -> Void = {}) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let (informers, controllers, services) = state.withLock { state in
            precondition(!state.started, "a manager's services run once")
            state.started = true
            return (state.informerOrder.compactMap { state.informers[$0]?.service }, state.controllers, state.services)
        }
        let leading = LeaderElectedControllers(
            client: client, election: configuration.leaderElection, onLeadershipLost: configuration.onLeadershipLost,
            controllers: controllers,
            leading: Meter(label: ControllerRuntimeMetrics.leaderElectionMasterStatus,
                           dimensions: [("name", configuration.leaderElection?.leaseName ?? "none")], factory: configuration.metrics),
            logger: logger)
        logger.info("starting", metadata: [
            "namespace": "\(configuration.namespace ?? "(all)")", "informers": "\(informers.count)", "controllers": "\(controllers.count)"])
        // Both end at a graceful shutdown, which is no reason to stop the others early.
        func lifecycle(_ stage: ManagerLifecycle.Stage) -> ServiceGroupConfiguration.ServiceConfiguration {
            ServiceGroupConfiguration.ServiceConfiguration(
                service: ManagerLifecycle(manager: self, stage: stage, onGracefulShutdown: onGracefulShutdown), successTerminationBehavior: .ignore)
        }
        return [lifecycle(.running)] + (services + informers + [leading]).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
            + [lifecycle(.stopping)]
    }

    /// Runs the manager's services as a group of their own until cancelled or shut down
    /// gracefully (tests, and processes that run nothing else); a process adds
    /// ``serviceConfigurations(onGracefulShutdown:)`` to its own group instead.
    public func run() async throws {
        try await ServiceGroup(configuration: ServiceGroupConfiguration(services: serviceConfigurations(), logger: logger)).run()
    }

    fileprivate func lifecycle(running: Bool? = nil, shuttingDown: Bool? = nil) {
        state.withLock { state in
            if let running { state.running = running }
            if let shuttingDown { state.shuttingDown = shuttingDown }
        }
    }
}

/// The manager's own part of the group, at both ends of it. First in the group, `.running`
/// is the last to hear of a graceful shutdown: the manager is alive (liveness) until every
/// other service has stopped. Last in the group, `.stopping` hears of it first: readiness
/// turns false and `onGracefulShutdown` runs before anything else stops.
private struct ManagerLifecycle: Service, CustomStringConvertible {
    enum Stage { case running, stopping }
    let manager: Manager
    let stage: Stage
    let onGracefulShutdown: @Sendable () -> Void
    var description: String { stage == .running ? "manager (liveness)" : "manager (readiness)" }

    func run() async throws {
        if stage == .running { manager.lifecycle(running: true) }
        defer { if stage == .running { manager.lifecycle(running: false) } }
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is ending for another reason, which it reports
        }
        if stage == .stopping {
            manager.lifecycle(shuttingDown: true)
            onGracefulShutdown()
        }
    }
}

/// What the readiness of an informer service is read through.
private protocol SyncReporting: Sendable {
    var hasSynced: Bool { get }
    var kind: String { get }
}

/// An informer as a service: runs until a graceful shutdown reaches it.
private struct InformerService<Object: KubernetesObject>: Service, SyncReporting, CustomStringConvertible {
    let informer: Informer<Object>
    var hasSynced: Bool { informer.hasSynced }
    var kind: String { Object.resourceType.plural }
    var description: String { "informer of \(Object.resourceType)" }

    func run() async throws {
        try await stopOnGracefulShutdown { try await informer.run() }
    }
}

/// The controllers, run together while the Lease is held (or always, without election).
private struct LeaderElectedControllers: Service, CustomStringConvertible {
    let client: any KubernetesAPI
    let election: LeaderElector.Configuration?
    let onLeadershipLost: @Sendable () -> Void
    let controllers: [@Sendable () async throws -> Void]
    /// 1 while the controllers run (always, without election), else 0.
    let leading: Meter
    let logger: Logger
    var description: String { "controllers" }

    func run() async throws {
        leading.set(0)
        try await stopOnGracefulShutdown {
            if let election {
                let elector = LeaderElector(client: client, configuration: election, logger: logger)
                try await elector.run(onLeadershipLost: onLeadershipLost) { try await runControllers() }
            } else {
                try await runControllers()
            }
        }
    }

    private func runControllers() async throws {
        leading.set(1)
        defer { leading.set(0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for controller in controllers { group.addTask { try await controller() } }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// Runs `operation` until it ends or a graceful shutdown cancels it; the cancellation a
/// graceful shutdown causes is a clean end, not an error.
func stopOnGracefulShutdown(_ operation: @escaping @Sendable () async throws -> Void) async throws {
    do {
        try await cancelWhenGracefulShutdown(operation)
    } catch is CancellationError where Task.isShuttingDownGracefully {
    }
}
