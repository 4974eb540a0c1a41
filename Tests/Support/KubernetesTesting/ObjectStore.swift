import Foundation
import KubernetesClient

/// The test server's state and the API's semantics: one global resourceVersion counter,
/// optimistic concurrency, generation on spec changes only, the `/status` subresource,
/// finalizers and `deletionTimestamp`, ownerReference garbage collection, label and field
/// selectors, paginated lists, and watches resumable from a resourceVersion until it is
/// compacted away (then 410 Gone).
actor ObjectStore {
    /// The garbage collector's finalizer for a deletion with propagationPolicy Orphan.
    static let orphanFinalizer = "orphan"
    struct Key: Hashable, Comparable {
        var namespace: String
        var name: String
        static func < (lhs: Key, rhs: Key) -> Bool { (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name) }
    }

    enum EventType: String, Sendable { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED" }

    struct LoggedEvent: Sendable {
        var resourceVersion: Int64
        var type: EventType
        var object: JSONValue
        var previous: JSONValue?
    }

    /// What a watch stream carries.
    enum WatchMessage: Sendable {
        case event(EventType, JSONValue)
        /// An object carrying only kind, apiVersion and the current resourceVersion.
        case bookmark(JSONValue)
        case expired(String)
    }

    struct Watcher {
        var resource: String
        var namespace: String?
        var labels: Selector
        var fields: Selector
        var continuation: AsyncStream<WatchMessage>.Continuation
    }

    private(set) var resources: [String: ServedResource] = [:]
    private var objects: [String: [Key: JSONValue]] = [:]
    private var resourceVersion: Int64 = 1000
    private var log: [String: [LoggedEvent]] = [:]
    private var oldestAvailable: [String: Int64] = [:]
    private var watchers: [UUID: Watcher] = [:]
    /// How many events per resource type are kept for watches to resume from.
    let logCapacity: Int
    private let now: @Sendable () -> Date

    init(logCapacity: Int = 10_000, now: @escaping @Sendable () -> Date = { Date() }) {
        self.logCapacity = logCapacity
        self.now = now
        for resource in ServedResource.builtIn { resources[resource.key] = resource }
        let created = JSONValue.string(KubeTime(now()).description)
        for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            resourceVersion += 1
            objects[ResourceType.namespaces.description, default: [:]][Key(namespace: "", name: namespace)] = [
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": [
                    "name": .string(namespace), "uid": .string(UUID().uuidString.lowercased()), "generation": 1,
                    "creationTimestamp": created, "resourceVersion": .string(String(resourceVersion)),
                ],
                "status": ["phase": "Active"],
            ]
        }
    }

    var currentResourceVersion: String { String(resourceVersion) }

    func resource(group: String, version: String, plural: String) -> ServedResource? {
        let key = group.isEmpty ? plural : "\(plural).\(group)"
        guard let resource = resources[key], resource.type.version == version else { return nil }
        return resource
    }

    var allResources: [ServedResource] { resources.values.sorted { $0.key < $1.key } }

    // MARK: Reads

    func get(_ resource: ServedResource, namespace: String?, name: String) throws -> JSONValue {
        guard let object = objects[resource.key]?[Key(namespace: namespace ?? "", name: name)] else {
            throw APIError.notFound(resource, name)
        }
        return object
    }

    struct ListResult {
        var items: [JSONValue]
        var resourceVersion: String
        var continueToken: String?
        var remaining: Int?
    }

    func list(_ resource: ServedResource, namespace: String?, labels: Selector, fields: Selector, limit: Int?, continueToken: String?) throws -> ListResult {
        var matching = (objects[resource.key] ?? [:])
            .filter { namespace == nil || $0.key.namespace == namespace }
            .filter { Self.matches($0.value, labels: labels, fields: fields) }
            .sorted { $0.key < $1.key }
        if let continueToken {
            guard let data = Data(base64Encoded: continueToken),
                  let last = String(data: data, encoding: .utf8)?.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false),
                  last.count == 2
            else { throw APIError.badRequest("continue key is not valid") }
            let after = Key(namespace: String(last[0]), name: String(last[1]))
            matching = matching.filter { $0.key > after }
        }
        var token: String?
        var remaining: Int?
        if let limit, limit > 0, matching.count > limit {
            let lastKey = matching[limit - 1].key
            token = Data("\(lastKey.namespace)/\(lastKey.name)".utf8).base64EncodedString()
            remaining = matching.count - limit
            matching = Array(matching.prefix(limit))
        }
        return ListResult(items: matching.map(\.value), resourceVersion: currentResourceVersion, continueToken: token, remaining: remaining)
    }

    static func matches(_ object: JSONValue, labels: Selector, fields: Selector) -> Bool {
        let labelValues = (object["metadata"]?["labels"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        guard labels.matches(labelValues) else { return false }
        guard !fields.requirements.isEmpty else { return true }
        var fieldValues: [String: String] = [:]
        fieldValues["metadata.name"] = object["metadata"]?["name"]?.stringValue
        fieldValues["metadata.namespace"] = object["metadata"]?["namespace"]?.stringValue ?? ""
        if let type = object["type"]?.stringValue { fieldValues["type"] = type }
        return fields.matches(fieldValues)
    }

    // MARK: Writes

    func create(_ resource: ServedResource, namespace: String?, _ proposed: JSONValue, strict: Bool = false) throws -> JSONValue {
        var object = proposed
        let namespace = resource.type.namespaced ? (namespace ?? object["metadata"]?["namespace"]?.stringValue ?? "default") : nil
        if let namespace { try requireNamespace(namespace) }
        var name = object["metadata"]?["name"]?.stringValue ?? ""
        if name.isEmpty, let prefix = object["metadata"]?["generateName"]?.stringValue, !prefix.isEmpty {
            name = prefix + String(UUID().uuidString.lowercased().prefix(5))
        }
        guard !name.isEmpty else {
            throw APIError.invalid(resource, "", ["metadata.name: Required value: name or generateName is required"])
        }
        if let bodyNamespace = proposed["metadata"]?["namespace"]?.stringValue, let namespace, bodyNamespace != namespace {
            throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        let key = Key(namespace: namespace ?? "", name: name)
        if objects[resource.key]?[key] != nil { throw APIError.alreadyExists(resource, name) }

        object.set(.string(name), at: ["metadata", "name"])
        object.set(namespace.map(JSONValue.string), at: ["metadata", "namespace"])
        object.set(.string(UUID().uuidString.lowercased()), at: ["metadata", "uid"])
        object.set(.string(KubeTime(now()).description), at: ["metadata", "creationTimestamp"])
        object.set(.integer(1), at: ["metadata", "generation"])
        object.set(nil, at: ["metadata", "deletionTimestamp"])
        object.set(.string(resource.type.apiVersion), at: ["apiVersion"])
        object.set(.string(resource.type.kind), at: ["kind"])
        if resource.hasStatusSubresource { object.set(nil, at: ["status"]) }
        object = try admit(resource, name: name, object, strict: strict)

        resourceVersion += 1
        object.set(.string(String(resourceVersion)), at: ["metadata", "resourceVersion"])
        objects[resource.key, default: [:]][key] = object
        record(resource, .added, object, previous: nil)
        if resource.type == .customResourceDefinitions, let served = ServedResource.from(crd: object) {
            resources[served.key] = served
        }
        return object
    }

    /// PUT of the object (`subresource` nil) or of its status.
    func update(_ resource: ServedResource, namespace: String?, name: String, _ proposed: JSONValue, subresource: String?, strict: Bool = false) throws -> JSONValue {
        let current = try get(resource, namespace: namespace, name: name)
        guard let version = proposed["metadata"]?["resourceVersion"]?.stringValue, !version.isEmpty else {
            throw APIError.invalid(resource, name, ["metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"])
        }
        guard version == current["metadata"]?["resourceVersion"]?.stringValue else {
            throw APIError.conflict(resource, name)
        }
        if let proposedName = proposed["metadata"]?["name"]?.stringValue, proposedName != name {
            throw APIError.badRequest("the name of the object (\(proposedName)) does not match the name on the URL (\(name))")
        }
        return try replace(resource, namespace: namespace, name: name, current: current, proposed: proposed, subresource: subresource, strict: strict)
    }

    enum PatchType: Sendable { case merge, strategicMerge }

    func patch(_ resource: ServedResource, namespace: String?, name: String, _ patch: JSONValue, type: PatchType, subresource: String?, strict: Bool = false) throws -> JSONValue {
        let current = try get(resource, namespace: namespace, name: name)
        if let version = patch["metadata"]?["resourceVersion"]?.stringValue, version != current["metadata"]?["resourceVersion"]?.stringValue {
            throw APIError.conflict(resource, name)
        }
        if type == .strategicMerge && !resource.type.group.isEmpty && resource.schema != nil {
            throw APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        }
        let proposed = type == .merge ? Patches.mergePatch(current, patch) : Patches.strategicMergePatch(current, patch)
        return try replace(resource, namespace: namespace, name: name, current: current, proposed: proposed, subresource: subresource, strict: strict)
    }

    private func replace(_ resource: ServedResource, namespace: String?, name: String, current: JSONValue, proposed: JSONValue, subresource: String?, strict: Bool) throws -> JSONValue {
        var next: JSONValue
        if subresource == "status" {
            next = current
            next.set(proposed["status"], at: ["status"])
        } else {
            next = proposed
            for field in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"] {
                next.set(current["metadata"]?[field], at: ["metadata", field])
            }
            next.set(.string(resource.type.apiVersion), at: ["apiVersion"])
            next.set(.string(resource.type.kind), at: ["kind"])
            if resource.hasStatusSubresource { next.set(current["status"], at: ["status"]) }
            // As a real API server: a write without managedFields (absent or an empty list)
            // keeps the object's, so that clients that drop them (informer caches) strip nothing.
            if case .array(let entries)? = next["metadata"]?["managedFields"], !entries.isEmpty {} else {
                next.set(current["metadata"]?["managedFields"], at: ["metadata", "managedFields"])
            }
        }
        if current["metadata"]?["deletionTimestamp"] != nil {
            let before = Set(current["metadata"]?["finalizers"]?.stringArray ?? [])
            let after = Set(next["metadata"]?["finalizers"]?.stringArray ?? [])
            if !after.subtracting(before).isEmpty {
                throw APIError.invalid(resource, name, ["metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted"])
            }
        }
        next = try admit(resource, name: name, next, strict: strict)
        next.set(current["metadata"]?["resourceVersion"], at: ["metadata", "resourceVersion"])
        if next == current { return current }  // a no-op write changes nothing, not even the version

        if Self.withoutMetadataAndStatus(next) != Self.withoutMetadataAndStatus(current) {
            let generation = current["metadata"]?["generation"]?.integerValue ?? 1
            next.set(.integer(generation + 1), at: ["metadata", "generation"])
        }
        resourceVersion += 1
        next.set(.string(String(resourceVersion)), at: ["metadata", "resourceVersion"])
        let key = Key(namespace: namespace ?? "", name: name)
        let remaining = next["metadata"]?["finalizers"]?.stringArray ?? []
        if next["metadata"]?["deletionTimestamp"] != nil, remaining.isEmpty || remaining == [Self.orphanFinalizer] {
            // As a real API server: the write that removes the last finalizer of a terminating
            // object deletes it; watchers see only the DELETED event, no MODIFIED before it.
            // Only `orphan` left: the garbage collector orphans the dependents and lets it go.
            try finalize(resource, key: key, object: next, orphan: !remaining.isEmpty)
            return next
        }
        objects[resource.key]?[key] = next
        record(resource, .modified, next, previous: current)
        if resource.type == .customResourceDefinitions, let served = ServedResource.from(crd: next) {
            resources[served.key] = served
        }
        return next
    }

    /// What admission and registry strategy do to a written object: Secret `stringData`,
    /// CRD status, and for custom resources schema defaulting, pruning or strict rejection of
    /// unknown fields, and validation.
    private func admit(_ resource: ServedResource, name: String, _ object: JSONValue, strict: Bool) throws -> JSONValue {
        var object = object
        if resource.type == .secrets, case .object(let stringData)? = object["stringData"] {
            var data = object["data"]?.objectValue ?? [:]
            for (key, value) in stringData {
                data[key] = .string(Data((value.stringValue ?? "").utf8).base64EncodedString())
            }
            object.set(.object(data), at: ["data"])
            object.set(nil, at: ["stringData"])
        }
        if resource.type == .customResourceDefinitions, let served = ServedResource.from(crd: object) {
            let names = object["spec"]?["names"] ?? .object([:])
            let time = JSONValue.string(KubeTime(now()).description)
            object.set(.object([
                "acceptedNames": names,
                "storedVersions": .array([.string(served.type.version)]),
                "conditions": .array([
                    .object(["type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": time]),
                    .object(["type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": time]),
                ]),
            ]), at: ["status"])
        }
        guard let schema = resource.schema else { return object }
        let (pruned, unknown) = SchemaValidation.prune(object, schema: schema)
        if strict, !unknown.isEmpty {
            throw APIError.badRequest(
                "\(resource.type.kind) in version \"\(resource.type.version)\" cannot be handled as a \(resource.type.kind): strict decoding error: "
                    + unknown.map { "unknown field \"\($0)\"" }.joined(separator: ", "))
        }
        object = SchemaValidation.applyDefaults(pruned, schema: schema)
        let errors = SchemaValidation.validate(object, schema: schema)
        if !errors.isEmpty { throw APIError.invalid(resource, name, errors) }
        return object
    }

    private static func withoutMetadataAndStatus(_ object: JSONValue) -> JSONValue {
        var copy = object
        copy.set(nil, at: ["metadata"])
        copy.set(nil, at: ["status"])
        return copy
    }

    // MARK: Deletion and garbage collection

    func delete(_ resource: ServedResource, namespace: String?, name: String, options: JSONValue?) throws -> JSONValue {
        let key = Key(namespace: namespace ?? "", name: name)
        let current = try get(resource, namespace: namespace, name: name)
        if let uid = options?["preconditions"]?["uid"]?.stringValue, uid != current["metadata"]?["uid"]?.stringValue {
            throw APIError.conflict(resource, name, "Precondition failed: UID in precondition: \(uid), UID in object meta: \(current["metadata"]?["uid"]?.stringValue ?? "")")
        }
        if let version = options?["preconditions"]?["resourceVersion"]?.stringValue, version != current["metadata"]?["resourceVersion"]?.stringValue {
            throw APIError.conflict(resource, name, "Precondition failed: ResourceVersion in precondition: \(version), ResourceVersion in object meta: \(current["metadata"]?["resourceVersion"]?.stringValue ?? "")")
        }
        let orphan = options?["propagationPolicy"]?.stringValue == "Orphan" || options?["orphanDependents"] == .bool(true)
        if resource.type == .namespaces {
            return try terminateNamespace(resource, key: key, current: current)
        }
        let finalizers = current["metadata"]?["finalizers"]?.stringArray ?? []
        if finalizers.isEmpty {
            return try finalize(resource, key: key, object: current, orphan: orphan)
        }
        if current["metadata"]?["deletionTimestamp"] != nil { return current }
        var next = current
        if orphan, !finalizers.contains(Self.orphanFinalizer) {
            // As the API server does for propagationPolicy Orphan: the garbage collector's
            // `orphan` finalizer, removed (with the dependents' ownerReferences) once the
            // object's other finalizers are gone.
            next.set(.array((finalizers + [Self.orphanFinalizer]).map(JSONValue.string)), at: ["metadata", "finalizers"])
        }
        next.set(.string(KubeTime(now()).description), at: ["metadata", "deletionTimestamp"])
        next.set(.integer(0), at: ["metadata", "deletionGracePeriodSeconds"])
        let generation = current["metadata"]?["generation"]?.integerValue ?? 1
        next.set(.integer(generation + 1), at: ["metadata", "generation"])
        resourceVersion += 1
        next.set(.string(String(resourceVersion)), at: ["metadata", "resourceVersion"])
        objects[resource.key]?[key] = next
        record(resource, .modified, next, previous: current)
        return next
    }

    /// Removes the object for good, then deletes (or orphans) its dependents, as the garbage
    /// collector does in the background.
    @discardableResult
    private func finalize(_ resource: ServedResource, key: Key, object: JSONValue, orphan: Bool) throws -> JSONValue {
        objects[resource.key]?[key] = nil
        resourceVersion += 1
        var gone = object
        gone.set(.string(String(resourceVersion)), at: ["metadata", "resourceVersion"])
        record(resource, .deleted, gone, previous: nil)
        if resource.type == .customResourceDefinitions, let served = ServedResource.from(crd: object) {
            for (objectKey, child) in objects[served.key] ?? [:] {
                _ = try? finalize(served, key: objectKey, object: child, orphan: true)
            }
            resources[served.key] = nil
            objects[served.key] = nil
        }
        if resource.type.namespaced, !key.namespace.isEmpty { removeNamespaceIfTerminatedAndEmpty(key.namespace) }
        if let uid = object["metadata"]?["uid"]?.stringValue {
            collectDependents(of: uid, orphan: orphan)
        }
        return gone
    }

    private func collectDependents(of uid: String, orphan: Bool) {
        for (resourceKey, byKey) in objects {
            guard let served = resources[resourceKey] else { continue }
            for (objectKey, child) in byKey {
                guard case .array(let owners)? = child["metadata"]?["ownerReferences"],
                      owners.contains(where: { $0["uid"]?.stringValue == uid })
                else { continue }
                let namespace = served.type.namespaced ? objectKey.namespace : nil
                if orphan {
                    let remaining = owners.filter { $0["uid"]?.stringValue != uid }
                    _ = try? patch(served, namespace: namespace, name: objectKey.name,
                                   .object(["metadata": .object(["ownerReferences": remaining.isEmpty ? .null : .array(remaining)])]),
                                   type: .merge, subresource: nil)
                } else {
                    _ = try? delete(served, namespace: namespace, name: objectKey.name, options: nil)
                }
            }
        }
    }

    private func requireNamespace(_ namespace: String) throws {
        guard let object = objects[ResourceType.namespaces.description]?[Key(namespace: "", name: namespace)] else {
            throw APIError(code: 404, reason: "NotFound", message: "namespaces \"\(namespace)\" not found",
                           details: StatusDetails(name: namespace, kind: "namespaces"))
        }
        if object["metadata"]?["deletionTimestamp"] != nil {
            throw APIError(code: 403, reason: "Forbidden",
                           message: "unable to create new content in namespace \(namespace) because it is being terminated",
                           details: StatusDetails(name: namespace, kind: "namespaces"))
        }
    }

    // MARK: Namespaces

    /// As the API server and the namespace controller do: the namespace turns Terminating (no
    /// new content), everything in it is deleted (objects with finalizers stay until their
    /// controllers remove them), and the namespace goes once it is empty.
    private func terminateNamespace(_ resource: ServedResource, key: Key, current: JSONValue) throws -> JSONValue {
        var namespace = current
        if current["metadata"]?["deletionTimestamp"] == nil {
            namespace.set(.string(KubeTime(now()).description), at: ["metadata", "deletionTimestamp"])
            namespace.set(.string("Terminating"), at: ["status", "phase"])
            resourceVersion += 1
            namespace.set(.string(String(resourceVersion)), at: ["metadata", "resourceVersion"])
            objects[resource.key]?[key] = namespace
            record(resource, .modified, namespace, previous: current)
        }
        for (resourceKey, byKey) in objects {
            guard let served = resources[resourceKey], served.type.namespaced else { continue }
            for objectKey in byKey.keys.sorted() where objectKey.namespace == key.name {
                _ = try? delete(served, namespace: objectKey.namespace, name: objectKey.name, options: nil)
            }
        }
        removeNamespaceIfTerminatedAndEmpty(key.name)
        return objects[resource.key]?[key] ?? namespace
    }

    private func removeNamespaceIfTerminatedAndEmpty(_ name: String) {
        let key = Key(namespace: "", name: name)
        guard let resource = resources[ResourceType.namespaces.description],
              let namespace = objects[resource.key]?[key], namespace["metadata"]?["deletionTimestamp"] != nil else { return }
        for (resourceKey, byKey) in objects where resources[resourceKey]?.type.namespaced == true {
            if byKey.keys.contains(where: { $0.namespace == name }) { return }
        }
        objects[resource.key]?[key] = nil
        resourceVersion += 1
        var gone = namespace
        gone.set(.string(String(resourceVersion)), at: ["metadata", "resourceVersion"])
        record(resource, .deleted, gone, previous: nil)
    }

    // MARK: Watches

    private func record(_ resource: ServedResource, _ type: EventType, _ object: JSONValue, previous: JSONValue?) {
        let event = LoggedEvent(resourceVersion: resourceVersion, type: type, object: object, previous: previous)
        log[resource.key, default: []].append(event)
        if log[resource.key]!.count > logCapacity {
            let dropped = log[resource.key]!.removeFirst()
            oldestAvailable[resource.key] = dropped.resourceVersion
        }
        for watcher in watchers.values where watcher.resource == resource.key {
            if let message = Self.message(for: event, watcher: watcher) { watcher.continuation.yield(message) }
        }
    }

    /// How a watcher sees an event: objects entering or leaving its selector appear as
    /// ADDED or DELETED, as in the real server.
    private static func message(for event: LoggedEvent, watcher: Watcher) -> WatchMessage? {
        let namespace = event.object["metadata"]?["namespace"]?.stringValue ?? ""
        if let wanted = watcher.namespace, wanted != namespace { return nil }
        let matchesNow = matches(event.object, labels: watcher.labels, fields: watcher.fields)
        let matchedBefore = event.previous.map { matches($0, labels: watcher.labels, fields: watcher.fields) } ?? matchesNow
        switch event.type {
        case .modified where matchesNow && !matchedBefore: return .event(.added, event.object)
        case .modified where !matchesNow && matchedBefore: return .event(.deleted, event.object)
        case _ where !matchesNow: return nil
        default: return .event(event.type, event.object)
        }
    }

    /// Registers a watch. From a resourceVersion, replays what happened after it (410 Gone
    /// when that is no longer kept); without one, starts with every current object as ADDED.
    func watch(_ resource: ServedResource, namespace: String?, labels: Selector, fields: Selector, from version: String?) throws -> (id: UUID, initial: [WatchMessage], stream: AsyncStream<WatchMessage>) {
        watchesStarted += 1
        let (stream, continuation) = AsyncStream<WatchMessage>.makeStream()
        let watcher = Watcher(resource: resource.key, namespace: namespace, labels: labels, fields: fields, continuation: continuation)
        var initial: [WatchMessage] = []
        if let version, !version.isEmpty, version != "0" {
            guard let start = Int64(version) else { throw APIError.badRequest("invalid resource version \"\(version)\"") }
            let oldest = oldestAvailable[resource.key] ?? 0
            if start < oldest {
                initial = [.expired("too old resource version: \(start) (\(oldest + 1))")]
            } else {
                for event in log[resource.key] ?? [] where event.resourceVersion > start {
                    if let message = Self.message(for: event, watcher: watcher) { initial.append(message) }
                }
            }
        } else {
            for (key, object) in (objects[resource.key] ?? [:]).sorted(by: { $0.key < $1.key })
            where (namespace == nil || key.namespace == namespace) && Self.matches(object, labels: labels, fields: fields) {
                initial.append(.event(.added, object))
            }
        }
        let id = UUID()
        watchers[id] = watcher
        return (id, initial, stream)
    }

    /// Sends a BOOKMARK with the current resourceVersion to one watcher.
    func bookmark(_ id: UUID) {
        guard let watcher = watchers[id], let resource = resources[watcher.resource] else { return }
        watcher.continuation.yield(.bookmark([
            "kind": .string(resource.type.kind), "apiVersion": .string(resource.type.apiVersion),
            "metadata": ["resourceVersion": .string(currentResourceVersion)],
        ]))
    }

    func stopWatch(_ id: UUID) {
        watchers.removeValue(forKey: id)?.continuation.finish()
    }

    // MARK: Faults

    /// Ends every open watch stream abruptly.
    func dropWatches() {
        for watcher in watchers.values { watcher.continuation.finish() }
        watchers.removeAll()
    }

    /// Forgets the watch history, so any watch from an older resourceVersion gets 410 Gone.
    func expireResourceVersions() {
        for key in resources.keys { oldestAvailable[key] = resourceVersion }
        log.removeAll()
        for watcher in watchers.values { watcher.continuation.yield(.expired("too old resource version")) ; watcher.continuation.finish() }
        watchers.removeAll()
    }

    var openWatchCount: Int { watchers.count }
    /// Watch requests answered since the start.
    private(set) var watchesStarted = 0
}

extension ObjectStore.WatchMessage {
    /// The line the API server writes for this message (newline included), and whether the
    /// watch ends after it (an ERROR). With `table`, objects are one-row Tables, as
    /// `kubectl get --watch` asks.
    func line(asTableOf table: ServedResource?) throws -> (bytes: [UInt8], ends: Bool) {
        let line: JSONValue
        var ends = false
        switch self {
        case .event(let type, let object):
            let sent = table.map {
                TableConversion.table($0, objects: [object], resourceVersion: object["metadata"]?["resourceVersion"]?.stringValue ?? "", now: Date())
            } ?? object
            line = ["type": .string(type.rawValue), "object": sent]
        case .bookmark(let object):
            line = ["type": "BOOKMARK", "object": object]
        case .expired(let message):
            let status = APIError.gone(message).status
            line = ["type": "ERROR", "object": try JSONValue(encoding: status)]
            ends = true
        }
        var data = try Discovery.canonicalJSON(line)
        data.append(0x0A)
        return (Array(data), ends)
    }
}

extension ObjectStore.ListResult {
    /// The list object the API server answers with.
    func json(of resource: ServedResource) -> JSONValue {
        var metadata: [String: JSONValue] = ["resourceVersion": .string(resourceVersion)]
        if let continueToken { metadata["continue"] = .string(continueToken) }
        if let remaining { metadata["remainingItemCount"] = .integer(Int64(remaining)) }
        return [
            "kind": .string("\(resource.type.kind)List"), "apiVersion": .string(resource.type.apiVersion),
            "metadata": .object(metadata), "items": .array(items),
        ]
    }
}
