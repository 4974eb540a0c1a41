import KubernetesClient
import Foundation
import CustomResources
import Testing

@Suite("API types round-trip losslessly")
struct RoundTripTests {
    static let examples = [
        "examples/daily-backup-schedule.yaml",
        "examples/s3-compatible-backup-schedule.yaml",
        "examples/full-backup-schedule.yaml",
    ]

    @Test("the seed's manifests and the full example decode strictly, validate, and re-encode unchanged", arguments: examples)
    func exampleManifests(file: String) throws {
        let schedules = try documents(of: "TalosEtcdBackupSchedule", file: file)
        try #require(schedules.count == 1)
        let decoded = try StrictDecoding.decode(TalosEtcdBackupSchedule.self, from: jsonData(schedules[0]))
        #expect(decoded.validate() == [])
        #expect(try JSONValue(encoding: decoded) == schedules[0])
    }

    @Test("the seed's schedule reads as the seed means it")
    func seedFields() throws {
        let json = try documents(of: "TalosEtcdBackupSchedule", file: "examples/daily-backup-schedule.yaml")[0]
        let schedule = try StrictDecoding.decode(TalosEtcdBackupSchedule.self, from: jsonData(json))
        #expect(schedule.metadata.name == "daily-backup-schedule")
        #expect(schedule.spec.schedule == "0 2 * * *")
        #expect(schedule.spec.retention == 7)
        let s3 = schedule.spec.backupTemplate.spec.backupStorage.s3
        #expect(s3.bucket == "my-etcd-backups")
        #expect(s3.region == "us-west-2")
        #expect(s3.accessKeyID == SecretKeySelector(name: "my-s3-credentials", key: "accessKeyID"))
        #expect(s3.secretAccessKey == SecretKeySelector(name: "my-s3-credentials", key: "secretAccessKey"))
        #expect(schedule.spec.backupTemplate.spec.talosControlPlaneRef.name == "my-controlplane")
    }

    @Test("every field, status and metadata included, survives decode and encode")
    func fullyPopulatedObjects() throws {
        for object in [FullObjects.schedule, FullObjects.backup] {
            let kind = object["kind"]
            let data = try jsonData(object)
            let reencoded: JSONValue = kind == .string("TalosEtcdBackup")
                ? try JSONValue(encoding: StrictDecoding.decode(TalosEtcdBackup.self, from: data))
                : try JSONValue(encoding: StrictDecoding.decode(TalosEtcdBackupSchedule.self, from: data))
            #expect(reencoded == object)
        }
    }

    @Test("unknown fields are rejected, each named by its path")
    func unknownFields() throws {
        guard case .object(var root) = FullObjects.schedule, case .object(var spec) = root["spec"]! else {
            Issue.record("fixture is not an object")
            return
        }
        spec["retension"] = .integer(3)
        root["spec"] = .object(spec)
        root["extra"] = .string("x")
        var text = String(decoding: try jsonData(.object(root)), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"bucket\":", with: "\"bukket\":\"b\",\"bucket\":")
        #expect(throws: StrictDecoding.UnknownFieldsError(paths: [
            "extra", "spec.backupTemplate.spec.backupStorage.s3.bukket", "spec.retension",
        ])) {
            try StrictDecoding.decode(TalosEtcdBackupSchedule.self, from: Data(text.utf8))
        }
        #expect(StrictDecoding.UnknownFieldsError(paths: ["spec.retension"]).description == "spec.retension: unknown field")
    }

    @Test("times are written as RFC 3339 in UTC with second precision")
    func times() throws {
        let json = #"{"lastScheduleTime":"2026-03-09T07:30:00.123+01:00"}"#
        let status = try JSONDecoder().decode(TalosEtcdBackupScheduleStatus.self, from: Data(json.utf8))
        #expect(try JSONValue(encoding: status) == .object(["lastScheduleTime": .string("2026-03-09T06:30:00Z")]))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(TalosEtcdBackupScheduleStatus.self, from: Data(#"{"lastScheduleTime":"yesterday"}"#.utf8))
        }
    }
}

/// Objects with every field the API has set, shared by the round-trip and schema tests.
enum FullObjects {
    static var condition: JSONValue {
        .object([
            "type": .string("Ready"), "status": .string("True"), "reason": .string("BackupSucceeded"),
            "message": .string("stored 1234 bytes"), "lastTransitionTime": .string("2026-03-09T06:30:00Z"),
            "observedGeneration": .integer(2),
        ])
    }

    static var metadata: JSONValue {
        .object([
            "name": .string("hourly-berlin"), "generateName": .string("hourly-"), "namespace": .string("talos-system"),
            "uid": .string("0b6a6b2e-8f4e-4f43-9d3a-1c2d3e4f5a6b"), "resourceVersion": .string("42"),
            "generation": .integer(2), "creationTimestamp": .string("2026-03-01T00:00:00Z"),
            "deletionTimestamp": .string("2026-03-10T00:00:00Z"), "deletionGracePeriodSeconds": .integer(0),
            "labels": .object(["app": .string("etcd-backup")]), "annotations": .object(["note": .string("x")]),
            "ownerReferences": .array([.object([
                "apiVersion": .string("talos.alperen.cloud/v1alpha1"), "kind": .string("TalosEtcdBackupSchedule"),
                "name": .string("hourly-berlin"), "uid": .string("u-1"), "controller": .bool(true),
                "blockOwnerDeletion": .bool(true),
            ])]),
            "finalizers": .array([.string("talos.alperen.cloud/backup-schedule")]),
            "managedFields": .array([.object(["manager": .string("kubectl"), "operation": .string("Apply")])]),
        ])
    }

    static var schedule: JSONValue {
        let example = try! documents(of: "TalosEtcdBackupSchedule", file: "examples/full-backup-schedule.yaml")[0]
        guard case .object(var root) = example, case .object(var spec)? = root["spec"] else { fatalError("fixture") }
        spec["retention"] = .integer(24)  // exclusive with retentionPolicy: only the schema test wants both
        // SSE-C instead of type: likewise.
        if case .object(var template)? = spec["backupTemplate"], case .object(var templateSpec)? = template["spec"],
           case .object(var storage)? = templateSpec["backupStorage"], case .object(var s3)? = storage["s3"],
           case .object(var sse)? = s3["serverSideEncryption"] {
            sse["customerKeySecretRef"] = .object(["name": .string("sse-c"), "key": .string("key")])
            s3["serverSideEncryption"] = .object(sse)
            storage["s3"] = .object(s3)
            templateSpec["backupStorage"] = .object(storage)
            template["spec"] = .object(templateSpec)
            spec["backupTemplate"] = .object(template)
        }
        root["spec"] = .object(spec)
        root["metadata"] = metadata
        root["status"] = .object([
            "lastScheduleTime": .string("2026-03-09T06:15:00Z"),
            "lastSuccessfulBackupTime": .string("2026-03-09T06:16:10Z"),
            "nextScheduleTime": .string("2026-03-09T07:15:00Z"),
            "activeBackups": .array([.string("hourly-berlin-1773036900")]),
            "retainedBackups": .object(["last": .integer(3), "hourly": .integer(24), "daily": .integer(7), "weekly": .integer(4),
                                        "monthly": .integer(12), "yearly": .integer(3), "total": .integer(40)]),
            "lastBackupNowRequest": .string("2026-03-09T06:20:00.000000Z"),
            "lastVerificationTime": .string("2026-03-09T04:00:00Z"),
            "nextVerificationTime": .string("2026-03-10T04:00:00Z"),
            "verifications": .object(["passed": .integer(38), "failed": .integer(1), "pending": .integer(1)]),
            "observedGeneration": .integer(2),
            "conditions": .array([condition]),
        ])
        return .object(root)
    }

    static var backup: JSONValue {
        guard case .object(let scheduleRoot) = schedule,
              let template = scheduleRoot["spec"]?["backupTemplate"]?["spec"] else { fatalError("fixture") }
        return .object([
            "apiVersion": .string("talos.alperen.cloud/v1alpha1"),
            "kind": .string("TalosEtcdBackup"),
            "metadata": metadata,
            "spec": template,
            "status": .object([
                "phase": .string("Succeeded"), "filename": .string("clusters/prod/talos-system/prod-controlplane/hourly-berlin-1773036900.db.zst.age"),
                "bucket": .string("etcd-backups"), "size": .integer(1234),
                "sha256": .string(String(repeating: "ab", count: 32)), "node": .string("10.5.0.2"),
                "snapshotSHA256": .string(String(repeating: "cd", count: 32)), "snapshotSize": .integer(8192),
                "compression": .string("zstd"), "encryptedTo": .array([.string("0123456789abcdef")]), "serverSideEncryption": .string("aws:kms"),
                "lockedUntil": .string("2026-04-08T06:16:10Z"),
                "revision": .integer(20001), "totalKeys": .integer(20004),
                "stateFilename": .string("clusters/prod/talos-system/prod-controlplane/hourly-berlin-1773036900.state.yaml.zst.age"),
                "stateSHA256": .string(String(repeating: "ef", count: 32)),
                "startTime": .string("2026-03-09T06:15:01Z"), "completionTime": .string("2026-03-09T06:16:10Z"),
                "attempts": .integer(1), "attemptedBy": "operator-0_1a2b3c4d",
                "lastVerifiedTime": .string("2026-03-10T04:02:13Z"),
                "verification": .object(["result": .string("Passed"), "message": .string("s3://etcd-backups/...: 1234 bytes, sha256 abab... as recorded")]),
                "conditions": .array([condition]),
            ]),
        ])
    }
}
