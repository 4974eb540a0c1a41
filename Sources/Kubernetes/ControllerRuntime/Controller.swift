import Foundation
import KubernetesClient
import Logging
import Metrics
import Synchronization

/// What a reconciler wants next for the key it handled.
public enum ReconcileResult: Sendable, Equatable {
    /// Nothing until the object (or something it owns) changes.
    case done
    /// Look again after this long (for example at a schedule's next run).
    case requeue(after: Duration)
}

/// Brings one object's world in line with its spec. Called with the object's key; reads
/// what it needs (usually from informer caches). Thrown errors are retried with backoff.
public protocol Reconciler: Sendable {
    func reconcile(_ key: ObjectKey) async throws -> ReconcileResult
}

/// Runs a reconciler over a kind: the primary informer's changes that pass its
/// ``EventFilter``, and changes of owned kinds mapped to their controller owner's key, feed a
/// ``WorkQueue`` that `workers` tasks drain. The informers are shared and run elsewhere (by a
/// ``Manager``); the controller only subscribes to them while it runs.
/// Cancelling ``run()`` stops taking work and lets in-flight reconciles finish.
public final class Controller<Primary: KubernetesObject>: Sendable {
    public let name: String
    public let queue: WorkQueue<ObjectKey>
    private let sources: [Source]
    private let reconciler: any Reconciler
    private let workers: Int
    private let metricsFactory: any MetricsFactory
    private let metrics: ReconcileMetrics
    private let logger: Logger
    /// Workers inside a reconcile now (controller_runtime_active_workers).
    private let active = Atomic<Int>(0)

    /// An informer the controller reads: how to subscribe its events to the queue, and how to
    /// wait for its first list.
    private struct Source: Sendable {
        var subscribe: @Sendable (WorkQueue<ObjectKey>) -> @Sendable () -> Void
        var waitForSync: @Sendable () async -> Void
    }

    /// `filter` decides which updates of `Primary` objects reconcile them (by default all, as
    /// in controller-runtime; ``EventFilter/specOrMetadataChanged`` skips the reconciler's own
    /// status writes). `metrics` records controller-runtime's reconcile and work queue metrics
    /// (``ControllerRuntimeMetrics``). `maxWorkersPerNamespace` caps the workers the keys of one
    /// namespace hold at once (nil: no cap), so that one namespace's slow objects cannot
    /// occupy every worker.
    public convenience init(name: String, primary: Informer<Primary>, filter: EventFilter<Primary> = .all,
                            reconciler: any Reconciler, workers: Int = 1, maxWorkersPerNamespace: Int? = nil,
                            metrics: any MetricsFactory = NOOPMetricsHandler.instance,
                            logger: Logger = Logger(label: "controller")) {
        let source = Source(subscribe: { queue in
            let registration = primary.addHandler { event in
                if filter.passes(event) { queue.add(event.object.key) }
            }
            return { primary.removeHandler(registration) }
        }, waitForSync: { await primary.waitForSync() })
        let groupLimit = maxWorkersPerNamespace.map { WorkQueue<ObjectKey>.GroupLimit(maxInFlight: $0, group: { $0.namespace }) }
        self.init(name: name, sources: [source], reconciler: reconciler, workers: workers, groupLimit: groupLimit, metrics: metrics, logger: logger)
    }

    private init(name: String, sources: [Source], reconciler: any Reconciler, workers: Int, groupLimit: WorkQueue<ObjectKey>.GroupLimit?,
                 metrics: any MetricsFactory, logger: Logger) {
        self.name = name
        self.sources = sources
        self.reconciler = reconciler
        self.workers = max(1, workers)
        self.metricsFactory = metrics
        self.metrics = ReconcileMetrics(controller: name, workers: max(1, workers), factory: metrics)
        self.queue = WorkQueue(metrics: WorkQueueMetrics(name: name, factory: metrics), groupLimit: groupLimit)
        var logger = logger
        logger[metadataKey: "controller"] = "\(name)"
        self.logger = logger
    }

    /// This controller also watching `informer`'s kind: a change that passes `filter`, to an
    /// object whose controller ownerReference points at a `Primary`, reconciles that owner.
    public func owning<Owned: KubernetesObject>(_ informer: Informer<Owned>, filter: EventFilter<Owned> = .all) -> Controller<Primary> {
        watching(informer, filter: filter) { object in
            guard let owner = object.metadata.controllerReference, owner.kind == Primary.resourceType.kind,
                  owner.apiVersion == Primary.resourceType.apiVersion else { return [] }
            return [ObjectKey(namespace: object.metadata.namespace, name: owner.name)]
        }
    }

    /// This controller also watching `informer`'s kind: a change that passes `filter`
    /// reconciles the keys `map` gives for the object (controller-runtime's
    /// `EnqueueRequestsFromMapFunc`: an owner's change reaching what it owns, for example).
    public func watching<Other: KubernetesObject>(_ informer: Informer<Other>, filter: EventFilter<Other> = .all,
                                                  map: @escaping @Sendable (Other) -> [ObjectKey]) -> Controller<Primary> {
        let source = Source(subscribe: { queue in
            let registration = informer.addHandler { event in
                guard filter.passes(event) else { return }
                for key in map(event.object) { queue.add(key) }
            }
            return { informer.removeHandler(registration) }
        }, waitForSync: { await informer.waitForSync() })
        return Controller(name: name, sources: sources + [source], reconciler: reconciler, workers: workers, groupLimit: queue.groupLimit,
                          metrics: metricsFactory, logger: logger)
    }

    /// Runs until cancelled. Workers start only when every informer the controller reads (the
    /// primary and the owned kinds) has synced: a reconciler must never decide on an empty
    /// cache (a schedule would see none of its running backups and start another). On
    /// cancellation the queue stops handing out keys; in-flight reconciles see the
    /// cancellation (an upload aborts, a request stops) and finish.
    public func run() async throws {
        let queue = self.queue
        let unsubscribe = sources.map { $0.subscribe(queue) }
        defer { for remove in unsubscribe { remove() } }
        await withDiscardingTaskGroup { group in
            group.addTask { await queue.runTimers() }
            await withTaskCancellationHandler {
                for source in sources { await source.waitForSync() }
                guard !Task.isCancelled else { return }
                logger.info("caches synced; starting workers", metadata: ["workers": "\(workers)"])
                await withDiscardingTaskGroup { workerGroup in
                    for _ in 0..<workers {
                        workerGroup.addTask { [self] in await self.work() }
                    }
                }
            } onCancel: {
                queue.shutDown()
            }
            group.cancelAll()
        }
    }

    private func work() async {
        while let key = await queue.next() {
            let busy = active.add(1, ordering: .relaxed).newValue
            metrics.activeWorkers.set(busy)
            let started = ContinuousClock.now
            do {
                // A child task per reconcile: a task keeps the memory of its deepest async
                // frames (its allocator's slabs) until it ends, and a worker lives as long as
                // the operator, so a worker kept what its deepest reconcile once needed (after
                // this change heaptrack finds 0.4 MiB of task slabs live at idle with 1,000
                // schedules; docs/performance.md, the control plane).
                async let outcome = reconciler.reconcile(key)
                let result = try await outcome
                metrics.time.record(duration: ContinuousClock.now - started)
                queue.forget(key)
                switch result {
                case .done: metrics.success.increment()
                case .requeue(let delay):
                    metrics.requeueAfter.increment()
                    queue.add(key, after: delay)
                }
            } catch where Task.isCancelled {
                // Shutting down: the key is not retried here; whoever runs next picks it up.
            } catch {
                metrics.time.record(duration: ContinuousClock.now - started)
                metrics.error.increment()
                metrics.errors.increment()
                let failures = queue.failureCount(key)
                logger.warning("reconcile failed; retrying with backoff", metadata: ["key": "\(key)", "error": "\(error)", "failures": "\(failures + 1)"])
                queue.addRateLimited(key)
            }
            metrics.activeWorkers.set(active.subtract(1, ordering: .relaxed).newValue)
            queue.done(key)
        }
    }
}
