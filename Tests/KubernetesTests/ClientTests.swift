import Foundation
import KubernetesClient
import KubernetesTesting
import CustomResources
import TestSupport
import Testing

@Suite("Kubernetes REST client against the test server")
struct ClientTests {
    @Test("create, get, update, merge patch, delete, with typed errors")
    func crud() async throws {
        try await withServer { _, client in
            let created = try await client.create(ConfigMap("a", data: ["k": "v"]), ConfigMap.resourceType, namespace: "default")
            #expect(created.metadata.uid != nil)
            #expect(created.metadata.resourceVersion != nil)
            #expect(created.metadata.generation == 1)

            let duplicate = await kubernetesError { _ = try await client.create(ConfigMap("a"), ConfigMap.resourceType, namespace: "default") }
            #expect(duplicate?.isAlreadyExists == true)
            #expect(duplicate?.isConflict == false)
            #expect(duplicate?.message == "configmaps \"a\" already exists")

            var changed = created
            changed.data = ["k": "w"]
            let updated = try await client.update(changed, ConfigMap.resourceType, namespace: "default", name: "a")
            #expect(updated.data == ["k": "w"])
            #expect(updated.metadata.generation == 2)
            #expect(Int(updated.metadata.resourceVersion!)! > Int(created.metadata.resourceVersion!)!)

            // The old resourceVersion is stale now: 409 Conflict.
            let stale = await kubernetesError { _ = try await client.update(changed, ConfigMap.resourceType, namespace: "default", name: "a") }
            #expect(stale?.isConflict == true)
            #expect(stale?.code == 409)

            let patched = try await client.patch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "a", mergePatch: ["data": ["k": nil, "x": "y"]])
            #expect(patched.data == ["x": "y"])

            try await client.delete(ConfigMap.resourceType, namespace: "default", name: "a")
            let missing = await kubernetesError { _ = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "a") }
            #expect(missing?.isNotFound == true)
            #expect(missing?.description == "GET /api/v1/namespaces/default/configmaps/a: 404 NotFound: configmaps \"a\" not found")

            let noNamespace = await kubernetesError { _ = try await client.create(ConfigMap("b", namespace: "nowhere"), ConfigMap.resourceType, namespace: "nowhere") }
            #expect(noNamespace?.isNotFound == true)
            #expect(noNamespace?.message == "namespaces \"nowhere\" not found")
        }
    }

    @Test("lists with label and field selectors, paginated with limit and continue")
    func lists() async throws {
        try await withServer { _, client in
            for index in 0..<25 {
                _ = try await client.create(ConfigMap("cm-\(index)", labels: ["parity": index % 2 == 0 ? "even" : "odd", "app": "x"]),
                                            ConfigMap.resourceType, namespace: "default")
            }
            let even = try await client.list(ConfigMap.self, ConfigMap.resourceType, namespace: "default", options: ListOptions(labelSelector: "parity=even"))
            #expect(even.items.count == 13)
            let notEven = try await client.list(ConfigMap.self, ConfigMap.resourceType, namespace: "default", options: ListOptions(labelSelector: "app=x,parity!=even"))
            #expect(notEven.items.count == 12)
            let setBased = try await client.list(ConfigMap.self, ConfigMap.resourceType, namespace: nil, options: ListOptions(labelSelector: "parity in (odd),!missing"))
            #expect(setBased.items.count == 12)
            let byName = try await client.list(ConfigMap.self, ConfigMap.resourceType, namespace: "default", options: ListOptions(fieldSelector: "metadata.name=cm-7"))
            #expect(byName.items.map(\.metadata.name) == ["cm-7"])

            let firstPage = try await client.list(ConfigMap.self, ConfigMap.resourceType, namespace: "default", options: ListOptions(limit: 10))
            #expect(firstPage.items.count == 10)
            #expect(firstPage.metadata.continue != nil)
            let all = try await client.listAll(ConfigMap.self, ConfigMap.resourceType, namespace: "default", options: ListOptions(limit: 10))
            #expect(all.items.count == 25)
            #expect(Set(all.items.compactMap(\.metadata.name)).count == 25)
        }
    }

    @Test("custom resources: defaults, status subresource, generation on spec changes only, strict validation")
    func customResources() async throws {
        try await withServer { _, client in
            try await installCRDs(client)
            let schedule = try await client.create(try seedSchedule(), TalosEtcdBackupSchedule.resourceType, namespace: "default")
            #expect(schedule.spec.concurrencyPolicy == .forbid)  // defaulted by the server from the CRD schema
            #expect(schedule.spec.backupTemplate.spec.backupStorage.s3.prefix == "talos-etcd-backups")
            #expect(schedule.metadata.generation == 1)

            var withStatus = schedule
            withStatus.status = TalosEtcdBackupScheduleStatus()
            withStatus.status?.observedGeneration = 1
            withStatus.spec.paused = true  // ignored by a status write
            let statusWritten = try await client.updateStatus(withStatus, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: schedule.metadata.name!)
            #expect(statusWritten.status?.observedGeneration == 1)
            #expect(statusWritten.spec.paused == false)
            #expect(statusWritten.metadata.generation == 1)

            // A main-resource write ignores status and bumps generation for the spec change.
            var specChange = statusWritten
            specChange.spec.paused = true
            specChange.status = nil
            let afterSpec = try await client.update(specChange, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: schedule.metadata.name!)
            #expect(afterSpec.metadata.generation == 2)
            #expect(afterSpec.status?.observedGeneration == 1)

            let statusPatched = try await client.patch(
                TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: "default", name: schedule.metadata.name!,
                mergePatch: ["status": ["nextScheduleTime": "2026-11-27T02:00:00Z"]], subresource: "status")
            #expect(statusPatched.status?.nextScheduleTime?.description == "2026-11-27T02:00:00Z")
            #expect(statusPatched.metadata.generation == 2)

            let invalid = await kubernetesError {
                _ = try await client.patch(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: "default",
                                           name: schedule.metadata.name!, mergePatch: ["spec": ["retention": 0]])
            }
            #expect(invalid?.isInvalid == true)
            #expect(invalid?.message == "TalosEtcdBackupSchedule.talos.alperen.cloud \"daily-backup-schedule\" is invalid: spec.retention: Invalid value: 0: spec.retention in body should be greater than or equal to 1")
        }
    }

    @Test("finalizers hold a deleted object until removed; preconditions; owner references are garbage collected")
    func deletion() async throws {
        try await withServer { _, client in
            var owner = ConfigMap("owner")
            owner.metadata.finalizers = ["example.com/cleanup"]
            owner = try await client.create(owner, ConfigMap.resourceType, namespace: "default")
            var child = ConfigMap("child")
            child.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid!, controller: true)]
            _ = try await client.create(child, ConfigMap.resourceType, namespace: "default")

            let wrongUID = await kubernetesError {
                try await client.delete(ConfigMap.resourceType, namespace: "default", name: "owner", options: DeleteOptions(preconditionUID: "not-the-uid"))
            }
            #expect(wrongUID?.isConflict == true)

            try await client.delete(ConfigMap.resourceType, namespace: "default", name: "owner", options: DeleteOptions(propagationPolicy: .background))
            let terminating = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "owner")
            #expect(terminating.metadata.deletionTimestamp != nil)
            _ = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "child")  // still there

            _ = try await client.patch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "owner", mergePatch: ["metadata": ["finalizers": nil]])
            #expect(await kubernetesError { _ = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "owner") }?.isNotFound == true)
            #expect(await kubernetesError { _ = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "child") }?.isNotFound == true)
        }
    }

    @Test("429 and 500 are retried for idempotent requests, honouring Retry-After; a POST is not retried on 500")
    func retries() async throws {
        try await withServer { server, client in
            _ = try await client.create(ConfigMap("r"), ConfigMap.resourceType, namespace: "default")
            await server.failNextRequests(2, code: 500, method: "GET")
            let got = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "r")
            #expect(got.metadata.name == "r")

            await server.failNextRequests(1, code: 429, method: "GET", retryAfterSeconds: 1)
            _ = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "r")  // waited: ClientTimingTests

            await server.failNextRequests(1, code: 500, method: "POST")
            let failed = await kubernetesError { _ = try await client.create(ConfigMap("s"), ConfigMap.resourceType, namespace: "default") }
            #expect(failed?.code == 500)
            #expect(failed?.isServerError == true)

            await server.failNextRequests(1, code: 429, method: "POST")
            _ = try await client.create(ConfigMap("t"), ConfigMap.resourceType, namespace: "default")

            await server.failNextRequests(10, code: 503, method: "GET")
            let exhausted = await kubernetesError { _ = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "r") }
            #expect(exhausted?.code == 503)
        }
    }

    @Test("watch streams ADDED, MODIFIED, DELETED and BOOKMARK; a compacted resourceVersion answers 410 Gone")
    func watch() async throws {
        try await withServer { server, client in
            let start = try await client.list(ConfigMap.self, ConfigMap.resourceType, namespace: "default")
            let stream = try await client.watch(ConfigMap.self, ConfigMap.resourceType, namespace: "default",
                                                // Long enough for a loaded machine: the loop ends on the third event and a bookmark.
                                                options: WatchOptions(resourceVersion: start.metadata.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 60))
            _ = try await client.create(ConfigMap("w", data: ["a": "1"]), ConfigMap.resourceType, namespace: "default")
            _ = try await client.patch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "w", mergePatch: ["data": ["a": "2"]])
            try await client.delete(ConfigMap.resourceType, namespace: "default", name: "w")
            var seen: [String] = []
            var bookmark = false
            for try await event in stream {
                switch event {
                case .added(let object): seen.append("ADDED \(object.data?["a"] ?? "")")
                case .modified(let object): seen.append("MODIFIED \(object.data?["a"] ?? "")")
                case .deleted: seen.append("DELETED")
                case .bookmark(let version): bookmark = !version.isEmpty
                case .error(let status): Issue.record("unexpected \(status)")
                case .undecodable(_, let object): Issue.record("unexpected undecodable \(object)")
                }
                if seen.count == 3 && bookmark { break }
            }
            #expect(seen == ["ADDED 1", "MODIFIED 2", "DELETED"])
            #expect(bookmark)

            await server.expireResourceVersions()
            let expired = try await client.watch(ConfigMap.self, ConfigMap.resourceType, namespace: "default",
                                                 options: WatchOptions(resourceVersion: start.metadata.resourceVersion, timeoutSeconds: 5))
            var gone = false
            for try await event in expired {
                if case .error(let status) = event { gone = status.code == 410 }
            }
            #expect(gone)
        }
    }

    @Test("HTTPS with a client certificate; HTTPS with a bearer token, a wrong token is Unauthorized; an untrusted CA is refused")
    func tlsAndAuthentication() async throws {
        try await withServer(.init(tls: true, authentication: .clientCertificate, logger: quietLogger("server"))) { _, client in
            let namespaces = try await client.list(GenericObject.self, .namespaces)
            #expect(namespaces.items.contains { $0.metadata.name == "default" })
        }
        try await withServer(.init(tls: true, authentication: .token("s3cret"), logger: quietLogger("server"))) { server, client in
            _ = try await client.list(GenericObject.self, .namespaces)
            var wrong = server.clientConfiguration()
            wrong.credentials = .token("wrong")
            let stranger = try KubernetesClient(configuration: wrong)
            let denied = await kubernetesError { _ = try await stranger.list(GenericObject.self, .namespaces) }
            try await stranger.shutdown()
            #expect(denied?.isUnauthorized == true)

            var untrusted = server.clientConfiguration()
            untrusted.certificateAuthorityPEM = nil  // the system roots do not know the test CA
            untrusted.connectTimeout = .seconds(1)
            let doubtful = try KubernetesClient(configuration: untrusted, maxRetries: 0)
            let refused = await TestHelpers.caught(KubernetesConnectionError.self) { _ = try await doubtful.list(GenericObject.self, .namespaces) }
            try await doubtful.shutdown()
            #expect(refused != nil, "a TLS failure is a connection error, not an HTTP status")
        }
    }

    @Test("tls-server-name: the certificate is checked against that name, not the server URL's host")
    func tlsServerName() async throws {
        // This server's certificate names only `localhost`, not 127.0.0.1.
        try await withServer(.init(tls: true, authentication: .token("t"), loopbackIPInCertificate: false, logger: quietLogger("server"))) { server, client in
            var renamed = server.clientConfiguration()
            renamed.connectTimeout = .seconds(1)
            let byAddress = try KubernetesClient(configuration: renamed, maxRetries: 0)
            let refused = await TestHelpers.caught(KubernetesConnectionError.self) { _ = try await byAddress.list(GenericObject.self, .namespaces) }
            try await byAddress.shutdown()
            #expect(refused != nil)  // 127.0.0.1 is not in the certificate

            renamed.tlsServerName = "localhost"
            let viaName = try KubernetesClient(configuration: renamed, maxRetries: 0)
            let namespaces = try await viaName.list(GenericObject.self, .namespaces)
            #expect(!namespaces.items.isEmpty)
            try await viaName.shutdown()

            renamed.tlsServerName = "api.elsewhere.example"
            let misnamed = try KubernetesClient(configuration: renamed, maxRetries: 0)
            let mismatch = await TestHelpers.caught(KubernetesConnectionError.self) { _ = try await misnamed.list(GenericObject.self, .namespaces) }
            try await misnamed.shutdown()
            #expect(mismatch != nil)
        }
    }

    @Test("orphan propagation keeps dependents and removes their owner reference")
    func orphanDependents() async throws {
        try await withServer { _, client in
            let owner = try await client.create(ConfigMap("owner"), ConfigMap.resourceType, namespace: "default")
            var child = ConfigMap("child")
            child.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid!, controller: true)]
            _ = try await client.create(child, ConfigMap.resourceType, namespace: "default")
            try await client.delete(ConfigMap.resourceType, namespace: "default", name: "owner", options: DeleteOptions(propagationPolicy: .orphan))
            let orphan = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "child")
            #expect(orphan.metadata.ownerReferences == nil)
        }
    }
}

/// What the client and the test server do in real time (lower bounds: a loaded machine only
/// makes the waits longer; the one upper bound has six times the expected time).
@Suite("Kubernetes client in real time: rate limit, Retry-After, latency, watch timeout")
struct ClientTimingTests {
    @Test("a 429 with Retry-After: 1 is retried after that second")
    func retryAfter() async throws {
        try await withServer { server, client in
            _ = try await client.create(ConfigMap("r"), ConfigMap.resourceType, namespace: "default")
            await server.failNextRequests(1, code: 429, method: "GET", retryAfterSeconds: 1)
            let start = ContinuousClock.now
            _ = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "r")
            #expect(ContinuousClock.now - start >= .milliseconds(900))
        }
    }

    @Test("injected latency delays every request")
    func latency() async throws {
        try await withServer { server, client in
            await server.setLatency(.milliseconds(300))
            let start = ContinuousClock.now
            _ = try await client.list(GenericObject.self, .namespaces)
            #expect(ContinuousClock.now - start >= .milliseconds(300))
        }
    }

    @Test("a watch with timeoutSeconds ends cleanly when the server closes it")
    func watchTimeout() async throws {
        try await withServer { _, client in
            let start = ContinuousClock.now
            let stream = try await client.watch(ConfigMap.self, ConfigMap.resourceType, namespace: "default",
                                                options: WatchOptions(allowWatchBookmarks: false, timeoutSeconds: 1))
            var events = 0
            for try await _ in stream { events += 1 }
            #expect(events == 0)
            #expect(ContinuousClock.now - start >= .milliseconds(900))
        }
    }

    @Test("client-side rate limit: burst, then the configured rate")
    func rateLimit() async throws {
        try await withServer { server, _ in
            var configuration = server.clientConfiguration()
            configuration.queriesPerSecond = 20
            configuration.burst = 2
            let limited = try KubernetesClient(configuration: configuration)
            let start = ContinuousClock.now
            for _ in 0..<12 { _ = try await limited.list(GenericObject.self, .namespaces) }
            let elapsed = ContinuousClock.now - start
            try await limited.shutdown()
            #expect(elapsed >= .milliseconds(450))  // 2 at once, then 10 at 20 per second
            #expect(elapsed < .seconds(3))
        }
    }
}
