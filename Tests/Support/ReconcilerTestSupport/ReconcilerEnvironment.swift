import BackupOperator
import ControllerRuntime
import Foundation
import KubernetesClient
import KubernetesTesting
import CustomResources
import TestSupport
import Testing

/// The Kubernetes API in memory (no network) with the CRDs, informers keeping the stores of
/// schedules and backups, and a clock the test sets by hand: reconcilers are called directly,
/// step by step, with the same typed handles (``ObjectClient``) as in production. Every write
/// through ``client`` returns once the informers have seen it (``CacheSyncingAPI``).
public struct ReconcilerEnvironment: Sendable {
    public let api: InMemoryKubernetesAPI
    public let client: any KubernetesAPI
    public let schedules: Informer<TalosEtcdBackupSchedule>
    public let backups: Informer<TalosEtcdBackup>
    public let events: EventRecorder
    public let time: Locked<Date>
    public let namespace = "default"

    public var clock: OperatorClock {
        let time = self.time
        return OperatorClock { time.withLock { $0 } }
    }

    public func setTime(_ date: Date) { time.withLock { $0 = date } }

    /// The schedule controller's handle on schedules.
    public var scheduleClient: ObjectClient<TalosEtcdBackupSchedule> { ObjectClient(api: client, informer: schedules) }

    /// Both controllers' handle on backups.
    public var backupClient: ObjectClient<TalosEtcdBackup> { ObjectClient(api: client, informer: backups) }

    public static func with(_ body: (ReconcilerEnvironment) async throws -> Void) async throws {
        let api = InMemoryKubernetesAPI()
        for crd in CustomResourceDefinitions.all {
            _ = try await api.create(try GenericObject(raw: crd), .customResourceDefinitions)
        }
        do {
            let schedules = Informer<TalosEtcdBackupSchedule>(client: api, logger: quietLogger("informer"))
            let backups = Informer<TalosEtcdBackup>(client: api, logger: quietLogger("informer"))
            let client = CacheSyncingAPI(base: api, schedules: schedules.cache, backups: backups.cache)
            let environment = ReconcilerEnvironment(
                api: api, client: client, schedules: schedules, backups: backups,
                events: EventRecorder(client: client, reportingController: "test", reportingInstance: "test", logger: quietLogger("events")),
                time: Locked(Date()))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await environment.schedules.run() }
                group.addTask { try await environment.backups.run() }
                group.addTask { try await environment.events.run() }
                await environment.schedules.waitForSync()
                await environment.backups.waitForSync()
                try await body(environment)
                group.cancelAll()
            }
        }
    }

    /// Waits until the backup cache agrees with the server about which backups exist.
    public func syncCache() async throws {
        try await eventually("the backup cache to catch up") {
            let listed = try await client.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace).items
            let cached = backups.cache.list(namespace: namespace)
            return Set(listed.map { "\($0.metadata.name ?? "")@\($0.metadata.resourceVersion ?? "")" })
                == Set(cached.map { "\($0.metadata.name ?? "")@\($0.metadata.resourceVersion ?? "")" })
        }
    }

    public func backupNames() async throws -> [String] {
        try await client.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace).items
            .compactMap(\.metadata.name).sorted()
    }

    public func schedule(_ name: String) async throws -> TalosEtcdBackupSchedule {
        try await client.get(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: namespace, name: name)
    }

    /// The reasons of the Events recorded so far (after those queued have been sent).
    public func eventReasons() async throws -> [String] {
        await events.flush()
        return try await client.listAll(GenericObject.self, .events, namespace: namespace).items.compactMap { event in
            if case .string(let reason)? = event.raw["reason"] { reason } else { nil }
        }
    }
}

/// A backup spec; what it points at does not matter to the schedule controller.
public func backupSpec(bucket: String = "etcd-backups", endpoint: String? = "http://127.0.0.1:1", controlPlane: String = "my-controlplane") -> TalosEtcdBackupSpec {
    TalosEtcdBackupSpec(
        talosControlPlaneRef: .init(name: controlPlane),
        backupStorage: BackupStorage(s3: S3Storage(
            bucket: bucket, region: "us-east-1",
            accessKeyID: .init(name: "s3-credentials", key: "accessKeyID"),
            secretAccessKey: .init(name: "s3-credentials", key: "secretAccessKey"),
            endpoint: endpoint, insecureHTTP: endpoint?.hasPrefix("http://") == true ? true : nil)))
}

