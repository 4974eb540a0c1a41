import Foundation
import KubernetesClient
import Logging

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

/// Runs a reconciler over a kind: the primary informer's changes, and changes of owned kinds
/// mapped to their controller owner's key, feed a ``WorkQueue`` that `workers` tasks drain.
/// Cancelling ``run()`` stops taking work and lets in-flight reconciles finish.
public final class Controller<Primary: KubernetesObject>: Sendable {
    public let name: String
    public let queue = WorkQueue<ObjectKey>()
    private let primary: Informer<Primary>
    private let owned: [OwnedSource]

    /// An informer of an owned kind, as the controller runs it and waits for it.
    private struct OwnedSource: Sendable {
        var run: @Sendable (WorkQueue<ObjectKey>) async throws -> Void
        var waitForSync: @Sendable () async -> Void
        var cancelSyncWait: @Sendable () -> Void
    }
    private let reconciler: any Reconciler
    private let workers: Int
    private let logger: Logger

    public convenience init(name: String, primary: Informer<Primary>, reconciler: any Reconciler, workers: Int = 1, logger: Logger = Logger(label: "controller")) {
        self.init(name: name, primary: primary, owned: [], reconciler: reconciler, workers: workers, logger: logger)
    }

    private init(name: String, primary: Informer<Primary>, owned: [OwnedSource], reconciler: any Reconciler, workers: Int, logger: Logger) {
        self.name = name
        self.primary = primary
        self.owned = owned
        self.reconciler = reconciler
        self.workers = max(1, workers)
        var logger = logger
        logger[metadataKey: "controller"] = "\(name)"
        self.logger = logger
    }

    /// This controller also watching `informer`'s kind: a change to an object whose controller
    /// ownerReference points at a `Primary` reconciles that owner.
    public func owning<Owned: KubernetesObject>(_ informer: Informer<Owned>) -> Controller<Primary> {
        let source = OwnedSource(run: { queue in
            try await informer.run { event in
                let object = event.object
                guard let owner = object.metadata.controllerReference,
                      owner.kind == Primary.resourceType.kind,
                      owner.apiVersion == Primary.resourceType.apiVersion
                else { return }
                queue.add(ObjectKey(namespace: object.metadata.namespace, name: owner.name))
            }
        }, waitForSync: { await informer.waitForSync() }, cancelSyncWait: { informer.cancelSyncWait() })
        return Controller(name: name, primary: primary, owned: owned + [source], reconciler: reconciler, workers: workers, logger: logger)
    }

    /// Runs until cancelled. Workers start only when every informer the controller reads (the
    /// primary and the owned kinds) has synced: a reconciler must never decide on an empty
    /// cache (a schedule would see none of its running backups and start another). On
    /// cancellation the queue stops handing out keys; in-flight reconciles see the
    /// cancellation (an upload aborts, a request stops) and finish.
    public func run() async throws {
        let queue = self.queue
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await queue.runTimers() }
            group.addTask { [primary] in
                try await primary.run { event in queue.add(event.object.key) }
            }
            for source in owned {
                group.addTask { try await source.run(queue) }
            }
            let owned = self.owned
            await withTaskCancellationHandler {
                await primary.waitForSync()
                for source in owned { await source.waitForSync() }
                guard !Task.isCancelled else { return }
                logger.info("caches synced; starting workers", metadata: ["workers": "\(workers)"])
                await withDiscardingTaskGroup { workerGroup in
                    for _ in 0..<workers {
                        workerGroup.addTask { [self] in await self.work() }
                    }
                }
            } onCancel: {
                queue.shutDown()
                primary.cancelSyncWait()
                for source in owned { source.cancelSyncWait() }
            }
            group.cancelAll()
        }
    }

    private func work() async {
        while let key = await queue.next() {
            do {
                let result = try await reconciler.reconcile(key)
                queue.forget(key)
                if case .requeue(let delay) = result { queue.add(key, after: delay) }
            } catch where Task.isCancelled {
                // Shutting down: the key is not retried here; whoever runs next picks it up.
            } catch {
                let failures = queue.failureCount(key)
                logger.warning("reconcile failed; retrying with backoff", metadata: ["key": "\(key)", "error": "\(error)", "failures": "\(failures + 1)"])
                queue.addRateLimited(key)
            }
            queue.done(key)
        }
    }
}
