import Metrics

/// The metrics a controller process exposes under controller-runtime's names and labels, so
/// dashboards and alerts written for Go operators work unchanged. Recorded through
/// swift-metrics with the factory the ``Manager`` is given.
public enum ControllerRuntimeMetrics {
    public static let reconcileTotal = "controller_runtime_reconcile_total"
    public static let reconcileErrorsTotal = "controller_runtime_reconcile_errors_total"
    public static let reconcileTimeSeconds = "controller_runtime_reconcile_time_seconds"
    public static let maxConcurrentReconciles = "controller_runtime_max_concurrent_reconciles"
    public static let activeWorkers = "controller_runtime_active_workers"
    public static let workqueueDepth = "workqueue_depth"
    public static let workqueueAddsTotal = "workqueue_adds_total"
    public static let workqueueQueueDurationSeconds = "workqueue_queue_duration_seconds"
    public static let workqueueRetriesTotal = "workqueue_retries_total"
    public static let leaderElectionMasterStatus = "leader_election_master_status"

    public static let families: [MetricFamily] = [
        MetricFamily(reconcileTotal, help: "Total number of reconciliations per controller, by result (success, error, requeue_after)."),
        MetricFamily(reconcileErrorsTotal, help: "Total number of reconciliation errors per controller."),
        MetricFamily(reconcileTimeSeconds, help: "Length of time per reconciliation per controller.",
                     buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]),
        MetricFamily(maxConcurrentReconciles, help: "Maximum number of concurrent reconciles per controller."),
        MetricFamily(activeWorkers, help: "Number of currently used workers per controller."),
        MetricFamily(workqueueDepth, help: "Current depth of workqueue."),
        MetricFamily(workqueueAddsTotal, help: "Total number of adds handled by workqueue."),
        MetricFamily(workqueueQueueDurationSeconds, help: "How long in seconds an item stays in workqueue before being requested.",
                     buckets: MetricFamily.exponentialBuckets(start: 1e-6, factor: 10, count: 10)),
        MetricFamily(workqueueRetriesTotal, help: "Total number of retries handled by workqueue."),
        MetricFamily(leaderElectionMasterStatus, help: "Gauge of whether this process leads (1) or not (0), by lease name."),
    ]
}

/// One controller's reconcile metrics.
struct ReconcileMetrics: Sendable {
    let success: Counter
    let requeueAfter: Counter
    let error: Counter
    let errors: Counter
    let time: Timer
    let activeWorkers: Meter

    init(controller: String, workers: Int, factory: any MetricsFactory) {
        func total(_ result: String) -> Counter {
            Counter(label: ControllerRuntimeMetrics.reconcileTotal, dimensions: [("controller", controller), ("result", result)], factory: factory)
        }
        success = total("success")
        requeueAfter = total("requeue_after")
        error = total("error")
        errors = Counter(label: ControllerRuntimeMetrics.reconcileErrorsTotal, dimensions: [("controller", controller)], factory: factory)
        time = Timer(label: ControllerRuntimeMetrics.reconcileTimeSeconds, dimensions: [("controller", controller)], factory: factory)
        activeWorkers = Meter(label: ControllerRuntimeMetrics.activeWorkers, dimensions: [("controller", controller)], factory: factory)
        Meter(label: ControllerRuntimeMetrics.maxConcurrentReconciles, dimensions: [("controller", controller)], factory: factory).set(workers)
        activeWorkers.set(0)
    }
}

/// A work queue's metrics, labelled as controller-runtime labels its queues (`name` and
/// `controller` both the controller's name).
public struct WorkQueueMetrics: Sendable {
    let depth: Meter
    let adds: Counter
    let queueDuration: Timer
    let retries: Counter

    public init(name: String, factory: any MetricsFactory) {
        let labels = [("name", name), ("controller", name)]
        depth = Meter(label: ControllerRuntimeMetrics.workqueueDepth, dimensions: labels, factory: factory)
        adds = Counter(label: ControllerRuntimeMetrics.workqueueAddsTotal, dimensions: labels, factory: factory)
        queueDuration = Timer(label: ControllerRuntimeMetrics.workqueueQueueDurationSeconds, dimensions: labels, factory: factory)
        retries = Counter(label: ControllerRuntimeMetrics.workqueueRetriesTotal, dimensions: labels, factory: factory)
        depth.set(0)
    }
}
