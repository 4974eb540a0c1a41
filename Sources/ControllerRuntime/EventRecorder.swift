import Foundation
import KubernetesClient
import Logging
import OrderedCollections
import Synchronization

/// Records `events.k8s.io/v1` Events about objects, as `kubectl describe` and
/// `kubectl events` show them. A repeat of the same event (same object, type, reason, action
/// and note) updates the first one's `series.count` instead of creating another object.
/// Recording never fails the caller: a failure is logged.
///
/// The series it remembers are a bounded LRU (``seriesCapacity``, 4,096 as in client-go's
/// event correlator): an operator that reports many distinct events keeps flat memory; a
/// repeat of a forgotten event starts a new Event object.
public final class EventRecorder: Sendable {
    public enum EventType: String, Sendable { case normal = "Normal", warning = "Warning" }

    /// The object an event is about.
    public struct Regarding: Sendable, Hashable {
        public var apiVersion: String
        public var kind: String
        public var namespace: String?
        public var name: String
        public var uid: String?

        public init(apiVersion: String, kind: String, namespace: String?, name: String, uid: String?) {
            self.apiVersion = apiVersion
            self.kind = kind
            self.namespace = namespace
            self.name = name
            self.uid = uid
        }

        public init<Object: KubernetesObject>(_ object: Object) {
            self.init(apiVersion: Object.resourceType.apiVersion, kind: Object.resourceType.kind,
                      namespace: object.metadata.namespace, name: object.metadata.name ?? "", uid: object.metadata.uid)
        }
    }

    private struct SeriesKey: Hashable {
        var regarding: Regarding
        var type: EventType
        var reason: String
        var action: String
        var note: String
    }

    private let client: KubernetesClient
    private let controller: String
    private let instance: String
    private let logger: Logger
    /// Least recently used first.
    private let series = Mutex<OrderedDictionary<SeriesKey, (name: String, count: Int)>>([:])
    public let seriesCapacity: Int

    public init(client: KubernetesClient, reportingController: String, reportingInstance: String, seriesCapacity: Int = 4_096,
                logger: Logger = Logger(label: "events")) {
        self.client = client
        self.controller = reportingController
        self.instance = reportingInstance
        self.seriesCapacity = max(1, seriesCapacity)
        self.logger = logger
    }

    /// Event series remembered now (at most ``seriesCapacity``).
    public var seriesCount: Int { series.withLock { $0.count } }

    /// Stores `value` as the most recently used series, evicting the least recently used ones.
    private func remember(_ key: SeriesKey, _ value: (name: String, count: Int)) {
        series.withLock { series in
            series.removeValue(forKey: key)
            series[key] = value
            while series.count > seriesCapacity { series.removeFirst() }
        }
    }

    public func record(_ regarding: Regarding, type: EventType, reason: String, action: String, note: String) async {
        let key = SeriesKey(regarding: regarding, type: type, reason: reason, action: action, note: String(note.prefix(1024)))
        let namespace = regarding.namespace ?? "default"
        let now = MicroTime(Date())
        if let existing = series.withLock({ $0[key] }) {
            let count = existing.count + 1
            let patch: JSONValue = ["series": ["count": .integer(Int64(count)), "lastObservedTime": .string(now.description)]]
            do {
                _ = try await client.patch(GenericObject.self, .events, namespace: namespace, name: existing.name, mergePatch: patch)
                remember(key, (existing.name, count))
                return
            } catch let error as KubernetesError where error.isNotFound {
                series.withLock { _ = $0.removeValue(forKey: key) }  // expired: start a new one
            } catch {
                logger.warning("could not update event", metadata: ["reason": "\(reason)", "error": "\(error)"])
                return
            }
        }
        let name = "\(regarding.name).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        var regardingJSON: [String: JSONValue] = [
            "apiVersion": .string(regarding.apiVersion), "kind": .string(regarding.kind), "name": .string(regarding.name),
        ]
        if let namespace = regarding.namespace { regardingJSON["namespace"] = .string(namespace) }
        if let uid = regarding.uid { regardingJSON["uid"] = .string(uid) }
        let event: JSONValue = [
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "eventTime": .string(now.description),
            "reportingController": .string(controller), "reportingInstance": .string(instance),
            "action": .string(action), "reason": .string(reason), "note": .string(key.note), "type": .string(type.rawValue),
            "regarding": .object(regardingJSON),
        ]
        do {
            _ = try await client.create(try GenericObject(raw: event), .events, namespace: namespace)
            remember(key, (name, 1))
        } catch {
            logger.warning("could not record event", metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }
}
