import BackupOperator
import BackupResolution
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import NIOCore
import ReconcilerTestSupport
import S3
import SnapshotPipeline
import Synchronization
import TalosAPI
import Testing
import TestSupport

/// A transfer whose store and delete do what a test scripts, and count their calls: for the
/// reconciler's decisions around the network (fencing, deletion policy).
final class ScriptedTransfer: SnapshotTransfer {
    let onStore: @Sendable () async throws -> StoredBackup
    let onDelete: @Sendable () async throws -> Void
    let onVerify: @Sendable () async throws -> VerifiedObjects
    private let calls = Mutex((stores: 0, deletes: 0, lastStore: (key: "", plan: SnapshotEncodingPlan.plain)))

    init(store: @escaping @Sendable () async throws -> StoredBackup = { throw BackupFailure(reason: .uploadFailed, message: "scripted", retryable: false) },
         delete: @escaping @Sendable () async throws -> Void = {},
         verify: @escaping @Sendable () async throws -> VerifiedObjects = { throw S3Error(code: "InternalError", message: "scripted", statusCode: 500, operation: "GetObject", bucket: "b", key: nil, region: "r") }) {
        onStore = store
        onDelete = delete
        onVerify = verify
    }

    var stores: Int { calls.withLock { $0.stores } }
    var deletes: Int { calls.withLock { $0.deletes } }
    /// The object key and encoding the last store was asked for.
    var lastStore: (key: String, plan: SnapshotEncodingPlan) { calls.withLock { $0.lastStore } }

    /// The state manifest the last store was given.
    var lastState: [UInt8]? { state.withLock { $0 } }
    private let state = Mutex<[UInt8]?>(nil)

    func store(talos: TalosContext, destination: BackupDestination, plan: SnapshotEncodingPlan, owner: String,
               state manifest: [UInt8]?) async throws -> StoredBackup {
        calls.withLock {
            $0.stores += 1
            $0.lastStore = (destination.key, plan)
        }
        state.withLock { $0 = manifest }
        return try await onStore()
    }

    func delete(_ destination: BackupDestination, owner: String) async throws {
        calls.withLock { $0.deletes += 1 }
        try await onDelete()
    }

    func verify(_ destination: BackupDestination, expected: StoredBackupVerification.Expected,
                pace: @escaping @Sendable (Int) async throws -> Void) async throws -> VerifiedObjects {
        try await onVerify()
    }
}

extension BackupReconcilerTests {
    /// `timers`: the clock the reconciler's own bounds sleep on (a manual one to check a bound
    /// without waiting for it).
    func reconciler(_ setup: Setup, _ transfer: any SnapshotTransfer, instance: String = "operator-test",
                    timers: any Clock<Duration> = ContinuousClock()) -> BackupReconciler {
        let time = setup.environment.time
        return BackupReconciler(backups: setup.environment.backupClient, secrets: KubernetesSecretReader(client: setup.environment.client),
                                transfer: transfer, events: setup.environment.events,
                                clock: OperatorClock(now: { time.withLock { $0 } }, timers: timers), instance: instance,
                                logger: quietLogger("backup"))
    }

    func eventNotes(_ setup: Setup, reason: String) async throws -> [String] {
        await setup.environment.events.flush()
        return try await setup.environment.client.listAll(GenericObject.self, .events, namespace: "default").items.compactMap { event in
            guard event.raw["reason"] == .string(reason), case .string(let note)? = event.raw["note"] else { return nil }
            return note
        }
    }

    @Test("fencing: A blocks inside its upload, B takes over and finishes attempt 2, then A returns: A's size, sha256 and node never appear")
    func staleAttemptIsDropped() async throws {
        try await withoutNetwork { setup in
            let (released, release) = AsyncStream<Void>.makeStream()
            let stale = reconciler(setup, ScriptedTransfer(store: {
                for await _ in released {}
                return StoredBackup(node: "node-a", size: 111, sha256: String(repeating: "a", count: 64))
            }), instance: "operator-a")
            let current = reconciler(setup, ScriptedTransfer(store: {
                StoredBackup(node: "node-b", size: 222, sha256: String(repeating: "b", count: 64))
            }), instance: "operator-b")
            _ = try await createBackup(setup, "contested")
            let key = ObjectKey(namespace: "default", name: "contested")
            try await withThrowingTaskGroup(of: ReconcileResult.self) { group in
                group.addTask { try await stale.reconcile(key) }
                // As operator-b's controller would be woken: by the watch event of that write,
                // so its store holds it.
                try await eventually("operator-a's attempt is running, as operator-b's store sees it") {
                    let status = setup.environment.backups.cache.get(key)?.status
                    return status?.attempts == 1 && status?.attemptedBy == "operator-a"
                }
                #expect(try await current.reconcile(key) == .done)
                let taken = try await backup(setup, "contested")
                #expect(taken.status?.phase == .succeeded)
                #expect(taken.status?.attempts == 2)
                #expect(taken.status?.attemptedBy == "operator-b")
                release.finish()
                #expect(try await group.next() == .done)
            }
            let final = try await backup(setup, "contested")
            #expect(final.status?.node == "node-b")
            #expect(final.status?.size == 222)
            #expect(final.status?.sha256 == String(repeating: "b", count: 64))
        }
    }

    @Test("a backup found Running with every attempt started fails with AttemptsExhausted instead of starting a fourth")
    func attemptsHaveACeiling() async throws {
        try await withoutNetwork { setup in
            let transfer = ScriptedTransfer()
            let created = try await createBackup(setup, "killed-each-time")
            var running = created
            running.status = TalosEtcdBackupStatus()
            running.status?.phase = .running
            running.status?.attempts = BackupReconciler.maxAttempts
            running.status?.attemptedBy = "operator-killed"
            _ = try await setup.environment.client.updateStatus(running, TalosEtcdBackup.resourceType, namespace: "default", name: "killed-each-time")
            #expect(try await reconciler(setup, transfer).reconcile(ObjectKey(namespace: "default", name: "killed-each-time")) == .done)
            let failed = try await backup(setup, "killed-each-time")
            #expect(failed.status?.phase == .failed)
            #expect(failed.status?.attempts == 3)
            #expect(failed.status?.conditions?[type: ConditionType.failed]?.reason == ConditionReason.attemptsExhausted.rawValue)
            #expect(transfer.stores == 0, "no fourth attempt")
            #expect(try await setup.environment.eventReasons().contains(ConditionReason.attemptsExhausted.rawValue))
        }
    }

    @Test("a backup that never completed an upload is deleted without waiting on the store, even one that hangs")
    func unfinishedBackupDeletesWithoutTheStore() async throws {
        try await withoutNetwork { setup in
            // The store never answers the clean-up (until cancelled); the bound runs on a manual
            // clock, so the test checks the logic, not how fast this machine is.
            let cancelled = Locked(false)
            let hanging = ScriptedTransfer(delete: {
                try await withTaskCancellationHandler { try await waitUntilCancelled() } onCancel: { cancelled.withLock { $0 = true } }
            })
            let timers = ManualClock()
            let reconciler = reconciler(setup, hanging, timers: timers)
            _ = try await createBackup(setup, "failed")
            let key = ObjectKey(namespace: "default", name: "failed")
            #expect(try await reconciler.reconcile(key) == .done)
            let failed = try await backup(setup, "failed")
            #expect(failed.status?.phase == .failed)
            #expect(failed.status?.filename == nil, "nothing was stored, so nothing is recorded as stored")
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "failed")
            async let deleted = reconciler.reconcile(key)
            try await timers.waitForSleepers(1)
            try await eventually("the clean-up to ask the store") { hanging.deletes == 1 }
            timers.advance(by: BackupReconciler.cleanUpBound - .milliseconds(1))
            #expect(timers.sleepers == 1 && !cancelled.withLock({ $0 }), "not before the bound")
            timers.advance(by: .milliseconds(1))
            #expect(try await deleted == .done, "the deletion went on without the store")
            #expect(cancelled.withLock { $0 }, "the hanging request was cancelled at the bound")
            #expect(try await setup.environment.backupNames().isEmpty)

            // Never attempted at all: no request to the store.
            let untouched = ScriptedTransfer(delete: { Issue.record("the store was asked") })
            var pending = TalosEtcdBackup(metadata: ObjectMeta(name: "never-run", namespace: "default", finalizers: [BackupReconciler.finalizer]),
                                          spec: backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint))
            pending.spec.backupStorage.s3.prefix = setup.prefix
            _ = try await setup.environment.client.create(pending, TalosEtcdBackup.resourceType, namespace: "default")
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "never-run")
            #expect(try await self.reconciler(setup, untouched).reconcile(ObjectKey(namespace: "default", name: "never-run")) == .done)
            #expect(untouched.deletes == 0)
            #expect(try await setup.environment.backupNames().isEmpty)
        }
    }

    @Test("a Succeeded backup whose S3 Secret is gone: DeleteFailed until the deletion timeout, then ObjectLeftInStore naming the object, which stays")
    func objectLeftInStore() async throws {
        try await with { setup in
            let real = reconciler(setup, TalosToS3Transfer.unhurried())
            _ = try await createBackup(setup, "orphaned")
            let key = ObjectKey(namespace: "default", name: "orphaned")
            #expect(try await real.reconcile(key) == .done)
            let stored = try await backup(setup, "orphaned")
            let filename = try #require(stored.status?.filename)
            try await setup.environment.client.delete(.secrets, namespace: "default", name: "s3-credentials")
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "orphaned")

            guard case .requeue = try await real.reconcile(key) else {
                Issue.record("a permanent failure retries for a bounded time")
                return
            }
            #expect(try await backup(setup, "orphaned").metadata.finalizers == [BackupReconciler.finalizer])
            #expect(try await eventNotes(setup, reason: ConditionReason.deleteFailed.rawValue).contains { $0.contains("s3-credentials") })

            setup.environment.setTime(Date() + BackupReconciler.defaultObjectDeletionTimeout + 1)
            #expect(try await real.reconcile(key) == .done)
            #expect(try await setup.environment.backupNames().isEmpty, "deletion finished")
            let notes = try await eventNotes(setup, reason: ConditionReason.objectLeftInStore.rawValue)
            #expect(notes.count == 1)
            #expect(notes.first?.contains("s3://\(setup.s3.bucket)/\(filename)") == true)
            #expect(notes.first?.contains("s3-credentials") == true, "and why")
            _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: filename)  // still there
            try await setup.s3Client.deleteObject(bucket: setup.s3.bucket, key: filename)
        }
    }

    @Test("deletion uses where the object was stored (status), not the spec edited since")
    func deletionFollowsTheStatus() async throws {
        try await with { setup in
            let real = reconciler(setup, TalosToS3Transfer.unhurried())
            _ = try await createBackup(setup, "moved")
            let key = ObjectKey(namespace: "default", name: "moved")
            #expect(try await real.reconcile(key) == .done)
            let filename = try #require(try await backup(setup, "moved").status?.filename)
            _ = try await setup.environment.client.patch(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: "moved",
                                                         mergePatch: ["spec": ["backupStorage": ["s3": ["prefix": "elsewhere"]]]])
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "moved")
            #expect(try await real.reconcile(key) == .done)
            #expect(try await setup.environment.backupNames().isEmpty)
            let missing = await TestHelpers.caught(S3Error.self) { _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: filename) }
            #expect(missing?.kind == .noSuchKey, "the stored object was deleted")
        }
    }

    @Test("a transient store failure keeps the finalizer and retries with backoff, past any deadline")
    func transientFailuresRetry() async throws {
        try await withoutNetwork { setup in
            let unreachable = ScriptedTransfer(
                store: { StoredBackup(node: "n", size: 1, sha256: String(repeating: "c", count: 64)) },
                delete: { throw S3Error(code: "ConnectionFailed", message: "connection refused", statusCode: 0, operation: "HeadObject",
                                        bucket: "b", key: "k", region: "us-east-1") })
            let reconciler = reconciler(setup, unreachable)
            _ = try await createBackup(setup, "unreachable")
            let key = ObjectKey(namespace: "default", name: "unreachable")
            #expect(try await reconciler.reconcile(key) == .done)
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "unreachable")
            for offset in [0.0, BackupReconciler.defaultObjectDeletionTimeout * 10] {
                setup.environment.setTime(Date() + offset)
                await #expect(throws: BackupFailure.self) { _ = try await reconciler.reconcile(key) }
                #expect(try await backup(setup, "unreachable").metadata.finalizers == [BackupReconciler.finalizer])
            }
            #expect(unreachable.deletes == 2)
        }
    }

    @Test("an attempt still running at its deadline (--backup-attempt-timeout-seconds) is cancelled and fails with AttemptTimedOut, to be retried")
    func attemptTimesOut() async throws {
        try await withoutNetwork { setup in
            // A store that never answers, as a trickling endpoint would: only the attempt's
            // deadline ends it. The deadline runs on a manual clock.
            let cancelled = Locked(false)
            let hanging = ScriptedTransfer(store: {
                try await withTaskCancellationHandler { try await waitUntilCancelled() } onCancel: { cancelled.withLock { $0 = true } }
                throw CancellationError()
            })
            let timers = ManualClock()
            let reconciler = reconciler(setup, hanging, timers: timers)
            _ = try await createBackup(setup, "hanging")
            let key = ObjectKey(namespace: "default", name: "hanging")
            async let outcome = reconciler.reconcile(key)
            try await timers.waitForSleepers(at: [BackupReconciler.defaultAttemptTimeout])
            try await eventually("the attempt to reach the store") { hanging.stores == 1 }
            timers.advance(by: BackupReconciler.defaultAttemptTimeout - .milliseconds(1))
            try await Task.sleep(for: .milliseconds(200))  // room for a wrongly woken deadline to act
            let cutEarly = cancelled.withLock { $0 }
            #expect(!cutEarly, "not before the deadline")
            timers.advance(by: .milliseconds(1))
            guard case .requeue = try await outcome else {
                Issue.record("a timed-out attempt is retried")
                return
            }
            #expect(cancelled.withLock { $0 }, "the attempt's work was cancelled at the deadline")
            let retrying = try await backup(setup, "hanging")
            #expect(retrying.status?.phase == .running)
            let progressing = retrying.status?.conditions?[type: ConditionType.progressing]
            #expect(progressing?.reason == ConditionReason.retrying.rawValue)
            #expect(progressing?.message.contains("AttemptTimedOut: the attempt did not finish within 3600 s (--backup-attempt-timeout-seconds)") == true,
                    "\(String(describing: progressing?.message))")
            #expect(try await eventNotes(setup, reason: ConditionReason.attemptTimedOut.rawValue).count == 1)
        }
    }

    @Test("deleting a stored object from a store that never answers is cut at its bound and retried, the finalizer kept")
    func deletionIsBounded() async throws {
        try await withoutNetwork { setup in
            let cancelled = Locked(false)
            let hanging = ScriptedTransfer(
                store: { StoredBackup(node: "n", size: 1, sha256: String(repeating: "d", count: 64)) },
                delete: { try await withTaskCancellationHandler { try await waitUntilCancelled() } onCancel: { cancelled.withLock { $0 = true } } })
            let timers = ManualClock()
            let reconciler = reconciler(setup, hanging, timers: timers)
            _ = try await createBackup(setup, "stored")
            let key = ObjectKey(namespace: "default", name: "stored")
            #expect(try await reconciler.reconcile(key) == .done)
            #expect(try await backup(setup, "stored").status?.phase == .succeeded)
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "stored")
            async let deleted = reconciler.reconcile(key)
            try await timers.waitForSleepers(at: [BackupReconciler.deletionBound])
            try await eventually("the deletion to reach the store") { hanging.deletes == 1 }
            timers.advance(by: BackupReconciler.deletionBound)
            do {
                _ = try await deleted
                Issue.record("a store that never answers is a transient failure: the work queue retries it")
            } catch {
                #expect(!(error is CancellationError), "\(error)")
            }
            #expect(cancelled.withLock { $0 })
            #expect(try await backup(setup, "stored").metadata.finalizers == [BackupReconciler.finalizer])
            let notes = try await eventNotes(setup, reason: ConditionReason.deleteFailed.rawValue)
            #expect(notes.contains { $0.contains("did not finish within 300") && $0.contains("retrying") }, "\(notes)")
        }
    }

    @Test("a host the operator may not reach is never asked on a deletion either: not for the clean-up of a failed attempt, not for a stored object (ObjectLeftInStore)")
    func deletionRespectsTheEndpointPolicy() async throws {
        try await withoutNetwork { setup in
            let transfer = ScriptedTransfer(store: { StoredBackup(node: "n", size: 1, sha256: String(repeating: "e", count: 64)) })
            let reconciler = reconciler(setup, transfer)
            func create(_ name: String, endpoint: String) async throws {
                var spec = backupSpec(bucket: setup.s3.bucket, endpoint: endpoint)
                spec.backupStorage.s3.prefix = setup.prefix
                _ = try await setup.environment.client.create(TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default"), spec: spec),
                                                              TalosEtcdBackup.resourceType, namespace: "default")
            }
            // Refused before its attempt reached the store; its deletion does not reach it either.
            try await create("metadata", endpoint: "http://169.254.169.254")
            let metadataKey = ObjectKey(namespace: "default", name: "metadata")
            #expect(try await reconciler.reconcile(metadataKey) == .done)
            let refused = try await backup(setup, "metadata")
            #expect(refused.status?.conditions?[type: ConditionType.failed]?.reason == ConditionReason.endpointNotAllowed.rawValue)
            #expect(refused.status?.attempts == 1 && transfer.stores == 0)
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "metadata")
            #expect(try await reconciler.reconcile(metadataKey) == .done)
            #expect(transfer.deletes == 0, "the clean-up did not ask the metadata service")

            // Stored, then its spec pointed at the metadata service: the object is left, never asked for.
            try await create("moved", endpoint: setup.s3.endpoint)
            let movedKey = ObjectKey(namespace: "default", name: "moved")
            #expect(try await reconciler.reconcile(movedKey) == .done)
            #expect(try await backup(setup, "moved").status?.phase == .succeeded)
            _ = try await setup.environment.client.patch(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: "moved",
                                                         mergePatch: ["spec": ["backupStorage": ["s3": ["endpoint": "http://[fd00:ec2::254]"]]]])
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "moved")
            guard case .requeue = try await reconciler.reconcile(movedKey) else {
                Issue.record("a refused host is a permanent failure, retried until the deletion timeout")
                return
            }
            setup.environment.setTime(Date() + BackupReconciler.defaultObjectDeletionTimeout + 1)
            #expect(try await reconciler.reconcile(movedKey) == .done)
            #expect(transfer.deletes == 0, "the store behind a refused host was never asked")
            let left = try await eventNotes(setup, reason: ConditionReason.objectLeftInStore.rawValue)
            #expect(left.contains { $0.contains("fd00:ec2::254 is in a denied network") }, "\(left)")
        }
    }
}
