import AsyncHTTPClient
import BackupOperator
import BackupResolution
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import ReconcilerTestSupport
import S3
import S3TestSupport
import SnapshotPipeline
import TalosTesting
import Testing
import TestSupport

@Suite("Backups without static keys: the operator's ambient credentials where allowed, roleARN, session tokens (Kubernetes API in memory, moto's STS and S3, Talos test server on etcd)")
struct AmbientCredentialsBackupTests {
    let s3: S3TestServer
    let writerRole: String
    let readerRole: String

    init() throws {
        s3 = try S3TestServer.named("AUTH")
        let environment = ProcessInfo.processInfo.environment
        writerRole = try #require(environment["S3_TEST_AUTH_ROLE_ARN"], "run the tests with scripts/test, which creates the roles")
        readerRole = try #require(environment["S3_TEST_AUTH_READER_ROLE_ARN"])
    }

    /// The operator's ambient credentials as IRSA gives them: a token file exchanged at
    /// moto's STS for the writer role.
    func webIdentity(_ directory: URL) throws -> AmbientCredentials {
        let tokenFile = directory.appendingPathComponent("token")
        try Data("service-account-token".utf8).write(to: tokenFile)
        let environment = [
            "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path, "AWS_ROLE_ARN": writerRole, "AWS_ENDPOINT_URL_STS": s3.endpoint,
            "AWS_REGION": s3.region,
        ]
        return try #require(try AmbientCredentials.fromEnvironment(environment))
    }

    func run(ambient: AmbientS3Access, server: S3TestServer? = nil, edit: (inout TalosEtcdBackupSpec) -> Void = { _ in },
             secrets: [String: String] = [:], _ check: (ReconcilerEnvironment, TalosEtcdBackup, String) async throws -> Void) async throws {
        let s3 = server ?? self.s3
        try await TalosTestServer.withRunningOnFreshEtcd { talos in
            try await ReconcilerEnvironment.with { environment in
                try await createSecret(environment, "my-controlplane-talosconfig", ["talosconfig": try talos.talosconfig()])
                if !secrets.isEmpty { try await createSecret(environment, "s3-credentials", secrets) }
                let prefix = "ambient-\(UUID().uuidString.prefix(8).lowercased())"
                var spec = backupSpec(bucket: s3.bucket, endpoint: s3.endpoint)
                spec.backupStorage.s3.prefix = prefix
                spec.backupStorage.s3.accessKeyID = nil
                spec.backupStorage.s3.secretAccessKey = nil
                edit(&spec)
                _ = try await environment.client.create(TalosEtcdBackup(metadata: ObjectMeta(name: "b", namespace: "default"), spec: spec),
                                                        TalosEtcdBackup.resourceType, namespace: "default")
                let reconciler = BackupReconciler(backups: environment.backupClient, secrets: KubernetesSecretReader(client: environment.client),
                                                  ambientCredentials: ambient, transfer: TalosToS3Transfer.unhurried(), events: environment.events,
                                                  clock: environment.clock, logger: quietLogger("backup"))
                _ = try await reconciler.reconcile(ObjectKey(namespace: "default", name: "b"))
                let backup = try await environment.client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: "b")
                try await check(environment, backup, "\(prefix)/default/my-controlplane/b.db")
            }
        }
    }

    func createSecret(_ environment: ReconcilerEnvironment, _ name: String, _ data: [String: String]) async throws {
        let object: JSONValue = [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name), "namespace": "default"],
            "data": .object(data.mapValues { .string(Data($0.utf8).base64EncodedString()) }),
        ]
        _ = try await environment.client.create(try GenericObject(raw: object), .secrets, namespace: "default")
    }

    func removeObject(_ key: String) async throws {
        let client = try s3.client()
        do {
            try await client.deleteObject(bucket: s3.bucket, key: key)
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    @Test("a backup that names no keys, in a namespace the operator allows: stored with the web identity role's credentials")
    func ambientWebIdentity() async throws {
        let directory = try makeTemporaryDirectory("ambient")
        defer { removeTemporaryDirectory(directory) }
        let ambient = AmbientS3Access(credentials: try webIdentity(directory), namespaces: .named(["default", "other"]), kubernetes: nil)
        try await run(ambient: ambient) { _, backup, key in
            #expect(backup.status?.phase == .succeeded, "\(String(describing: backup.status?.conditions))")
            let stored = try await s3.readBack(key)
            #expect(stored.size == backup.status?.size)
            try await removeObject(key)
        }
    }

    @Test("roleARN on the operator's own credentials: assumed at the operator's STS, with the role's policy (the reader role may not write)")
    func ambientRoleARN() async throws {
        let directory = try makeTemporaryDirectory("ambient")
        defer { removeTemporaryDirectory(directory) }
        let ambient = AmbientS3Access(credentials: try webIdentity(directory), namespaces: .named(["default"]), kubernetes: nil)
        try await run(ambient: ambient, edit: { $0.backupStorage.s3.roleARN = writerRole }) { _, backup, key in
            #expect(backup.status?.phase == .succeeded, "\(String(describing: backup.status?.conditions))")
            try await removeObject(key)
        }
        try await run(ambient: ambient, edit: { $0.backupStorage.s3.roleARN = readerRole }) { _, backup, _ in
            let condition = backup.status?.conditions?[type: ConditionType.failed] ?? backup.status?.conditions?[type: ConditionType.progressing]
            #expect(condition?.message.contains("AccessDenied") == true, "\(String(describing: backup.status?.conditions))")
        }
    }

    @Test("a backup that names no keys, in a namespace the operator does not allow: CredentialsNotFound at once, naming the option")
    func ambientNotAllowed() async throws {
        let directory = try makeTemporaryDirectory("ambient")
        defer { removeTemporaryDirectory(directory) }
        for namespaces in [nil, AmbientS3Access.Namespaces.named(["team-a"])] {
            let ambient = AmbientS3Access(credentials: try webIdentity(directory), namespaces: namespaces, kubernetes: nil)
            try await run(ambient: ambient) { environment, backup, _ in
                #expect(backup.status?.phase == .failed)
                #expect(backup.status?.attempts == 1, "no retry can fix this")
                let condition = backup.status?.conditions?[type: ConditionType.failed]
                #expect(condition?.reason == ConditionReason.credentialsNotFound.rawValue)
                #expect(condition?.message.contains("not allowed in namespace default") == true, "\(String(describing: condition))")
                #expect(condition?.message.contains("--ambient-s3-credentials-namespaces") == true)
                let reasons = try await environment.eventReasons()
                #expect(reasons.contains(ConditionReason.credentialsNotFound.rawValue))
            }
        }
    }

    @Test("--ambient-s3-credentials-namespaces: *, names (spaces around commas allowed), or a selector; anything else refused")
    func namespacesOption() throws {
        #expect(try AmbientS3Access.Namespaces(parsing: "*") == .all)
        #expect(try AmbientS3Access.Namespaces(parsing: "team-a, team-b") == .named(["team-a", "team-b"]))
        #expect(try AmbientS3Access.Namespaces(parsing: "backups.example.com/ambient=allowed") == .labelled("backups.example.com/ambient=allowed"))
        #expect(try AmbientS3Access.Namespaces(parsing: "env in (prod, staging)") == .labelled("env in (prod, staging)"))
        #expect(try AmbientS3Access.Namespaces(parsing: "!restricted") == .labelled("!restricted"))
        for bad in ["", "team-a,", "Team-A", "team_a", "-a", String(repeating: "a", count: 64)] {
            #expect(throws: AmbientS3Access.AmbientAccessError.self, "\(bad)") { _ = try AmbientS3Access.Namespaces(parsing: bad) }
        }
    }

    @Test("namespaces chosen by a label selector: the API server's list says which")
    func labelledNamespaces() async throws {
        let directory = try makeTemporaryDirectory("ambient")
        defer { removeTemporaryDirectory(directory) }
        try await ReconcilerEnvironment.with { environment in
            for (name, value) in [("team-allowed", "allowed"), ("team-other", "no")] {
                let namespace: JSONValue = ["apiVersion": "v1", "kind": "Namespace",
                                            "metadata": ["name": .string(name), "labels": ["backups.example.com/ambient": .string(value)]]]
                _ = try await environment.client.create(try GenericObject(raw: namespace), .namespaces, namespace: nil)
            }
            let ambient = AmbientS3Access(credentials: try webIdentity(directory), namespaces: .labelled("backups.example.com/ambient=allowed"),
                                          kubernetes: environment.client)
            let resolver = CredentialResolver(secrets: KubernetesSecretReader(client: environment.client), ambient: ambient)
            var storage = backupSpec(bucket: s3.bucket, endpoint: s3.endpoint).backupStorage.s3
            storage.accessKeyID = nil
            storage.secretAccessKey = nil
            let configuration = try await resolver.s3Configuration(storage, namespace: "team-allowed")
            #expect(configuration.credentials is RenewingCredentials)
            let failure = await TestHelpers.caught(BackupFailure.self) { _ = try await resolver.s3Configuration(storage, namespace: "team-other") }
            #expect(failure?.reason == .credentialsNotFound, "\(String(describing: failure))")
            #expect(failure?.message.contains("not allowed in namespace team-other") == true)
        }
    }

    @Test("roleARN with the Secret's keys: the role's credentials write, with the role's policy (the reader role may not)")
    func roleARN() async throws {
        let keys = ["accessKeyID": s3.credentials.accessKeyID, "secretAccessKey": s3.credentials.secretAccessKey]
        let withKeys: (inout TalosEtcdBackupSpec) -> Void = {
            $0.backupStorage.s3.accessKeyID = .init(name: "s3-credentials", key: "accessKeyID")
            $0.backupStorage.s3.secretAccessKey = .init(name: "s3-credentials", key: "secretAccessKey")
        }
        try await run(ambient: .off, edit: { withKeys(&$0); $0.backupStorage.s3.roleARN = writerRole }, secrets: keys) { _, backup, key in
            #expect(backup.status?.phase == .succeeded, "\(String(describing: backup.status?.conditions))")
            try await removeObject(key)
        }
        try await run(ambient: .off, edit: { withKeys(&$0); $0.backupStorage.s3.roleARN = readerRole }, secrets: keys) { _, backup, _ in
            let condition = backup.status?.conditions?[type: ConditionType.failed] ?? backup.status?.conditions?[type: ConditionType.progressing]
            #expect(condition?.message.contains("AccessDenied") == true, "\(String(describing: backup.status?.conditions))")
        }
    }

    @Test("an SSE-C key that is not 256 bits fails the backup at once, a missing one is retried (the Secret may come); each names the Secret and key, never the value")
    func customerKeyProblems() async throws {
        let keys = ["accessKeyID": s3.credentials.accessKeyID, "secretAccessKey": s3.credentials.secretAccessKey, "sse-c": "too-short-a-key"]
        for (key, reason, message) in [("sse-c", ConditionReason.encryptionConfigInvalid, "key \"sse-c\" (named by spec.backupStorage.s3.serverSideEncryption.customerKeySecretRef) must hold a 256-bit SSE-C key"),
                                       ("absent", ConditionReason.encryptionConfigNotFound, "has no key \"absent\"")] {
            try await run(ambient: .off, edit: {
                $0.backupStorage.s3.accessKeyID = .init(name: "s3-credentials", key: "accessKeyID")
                $0.backupStorage.s3.secretAccessKey = .init(name: "s3-credentials", key: "secretAccessKey")
                $0.backupStorage.s3.serverSideEncryption = ServerSideEncryption(customerKeySecretRef: .init(name: "s3-credentials", key: key))
            }, secrets: keys) { _, backup, _ in
                let condition = backup.status?.conditions?[type: ConditionType.failed] ?? backup.status?.conditions?[type: ConditionType.progressing]
                if reason == .encryptionConfigInvalid {
                    #expect(backup.status?.phase == .failed && condition?.reason == reason.rawValue, "\(String(describing: condition))")
                } else {
                    #expect(condition?.reason == "Retrying" && condition?.message.contains(reason.rawValue) == true, "\(String(describing: condition))")
                }
                #expect(condition?.message.contains(message) == true, "\(String(describing: condition))")
                #expect(condition?.message.contains("too-short-a-key") == false)
            }
        }
    }

    @Test("a store that takes serverSideEncryption AES256 but stores the object unencrypted (Ceph RGW 16): the backup fails at once, nothing is left")
    func encryptionNotApplied() async throws {
        let rgw = try S3TestServer.named("RGW")
        let keys = ["accessKeyID": rgw.credentials.accessKeyID, "secretAccessKey": rgw.credentials.secretAccessKey]
        try await run(ambient: .off, server: rgw, edit: {
            $0.backupStorage.s3.accessKeyID = .init(name: "s3-credentials", key: "accessKeyID")
            $0.backupStorage.s3.secretAccessKey = .init(name: "s3-credentials", key: "secretAccessKey")
            $0.backupStorage.s3.serverSideEncryption = ServerSideEncryption(type: .aes256)
        }, secrets: keys) { _, backup, key in
            #expect(backup.status?.phase == .failed)
            #expect(backup.status?.attempts == 1, "no retry can fix this")
            let condition = backup.status?.conditions?[type: ConditionType.failed]
            #expect(condition?.reason == ConditionReason.uploadFailed.rawValue)
            #expect(condition?.message.contains("reports its server-side encryption as none, not AES256") == true, "\(String(describing: condition))")
            let client = try rgw.client()
            let left = await TestHelpers.caught(S3Error.self) { _ = try await client.headObject(bucket: rgw.bucket, key: key) }
            try await client.shutdown()
            #expect(left?.kind == .noSuchKey, "the unencrypted object was deleted")
        }
    }

    @Test("static keys with a sessionToken selector: temporary keys from a Secret work, and the token is needed")
    func sessionTokenSelector() async throws {
        let sts = SecurityTokenService(endpoint: s3.endpoint, region: s3.region, http: HTTPClient.shared)
        let issued = try await sts.assumeRole(roleARN: writerRole, sessionName: "tests", externalID: nil, credentials: s3.credentials)
        let secrets = ["accessKeyID": issued.accessKeyID, "secretAccessKey": issued.secretAccessKey, "sessionToken": issued.sessionToken ?? ""]
        try await run(ambient: .off, edit: {
            $0.backupStorage.s3.accessKeyID = .init(name: "s3-credentials", key: "accessKeyID")
            $0.backupStorage.s3.secretAccessKey = .init(name: "s3-credentials", key: "secretAccessKey")
            $0.backupStorage.s3.sessionToken = .init(name: "s3-credentials", key: "sessionToken")
        }, secrets: secrets) { _, backup, key in
            #expect(backup.status?.phase == .succeeded, "\(String(describing: backup.status?.conditions))")
            try await removeObject(key)
        }
        try await run(ambient: .off, edit: {
            $0.backupStorage.s3.accessKeyID = .init(name: "s3-credentials", key: "accessKeyID")
            $0.backupStorage.s3.secretAccessKey = .init(name: "s3-credentials", key: "secretAccessKey")
        }, secrets: secrets) { _, backup, _ in
            let condition = backup.status?.conditions?[type: ConditionType.failed] ?? backup.status?.conditions?[type: ConditionType.progressing]
            #expect(backup.status?.phase != .succeeded)
            #expect(condition?.message.contains("InvalidAccessKeyId") == true, "temporary keys without their token are refused: \(String(describing: condition))")
        }
    }
}
