import Foundation
import KubernetesClient

/// Discovery and OpenAPI documents: what kubectl reads before it does anything.
enum Discovery {
    static func version() -> JSONValue {
        ["major": "1", "minor": "32", "gitVersion": "v1.32.0-talos-etcd-backup-test", "gitCommit": "0000000000000000000000000000000000000000",
         "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"]
    }

    static func coreVersions(address: String) -> JSONValue {
        ["kind": "APIVersions", "versions": ["v1"],
         "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(address)]]]
    }

    static func groups(_ resources: [ServedResource]) -> JSONValue {
        var versionsByGroup: [String: Set<String>] = [:]
        for resource in resources where !resource.type.group.isEmpty {
            versionsByGroup[resource.type.group, default: []].insert(resource.type.version)
        }
        let groups: [JSONValue] = versionsByGroup.keys.sorted().map { group in
            let versions = versionsByGroup[group]!.sorted().map { version -> JSONValue in
                ["groupVersion": .string("\(group)/\(version)"), "version": .string(version)]
            }
            return ["name": .string(group), "versions": .array(versions), "preferredVersion": versions[0]]
        }
        return ["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups)]
    }

    static func resourceList(groupVersion: String, _ resources: [ServedResource]) -> JSONValue {
        var entries: [JSONValue] = []
        for resource in resources where resource.type.apiVersion == groupVersion {
            var entry: [String: JSONValue] = [
                "name": .string(resource.type.plural), "singularName": .string(resource.singular),
                "namespaced": .bool(resource.type.namespaced), "kind": .string(resource.type.kind),
                "verbs": .array(resource.verbs.map(JSONValue.string)),
            ]
            if !resource.shortNames.isEmpty { entry["shortNames"] = .array(resource.shortNames.map(JSONValue.string)) }
            if !resource.categories.isEmpty { entry["categories"] = .array(resource.categories.map(JSONValue.string)) }
            entries.append(.object(entry))
            if resource.hasStatusSubresource {
                entries.append([
                    "name": .string("\(resource.type.plural)/status"), "singularName": "", "namespaced": .bool(resource.type.namespaced),
                    "kind": .string(resource.type.kind), "verbs": ["get", "patch", "update"],
                ])
            }
        }
        return ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion), "resources": .array(entries)]
    }

    static func groupVersions(_ resources: [ServedResource]) -> [String] {
        Array(Set(resources.map(\.type.apiVersion))).sorted()
    }

    /// `/openapi/v3`: one entry per group-version, `api/v1` and `apis/<group>/<version>`.
    static func openAPIRoot(_ resources: [ServedResource]) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        for groupVersion in groupVersions(resources) {
            let path = groupVersion.contains("/") ? "apis/\(groupVersion)" : "api/\(groupVersion)"
            let hash = String(format: "%016llX", UInt64(bitPattern: Int64(stableHash(openAPIDocument(groupVersion: groupVersion, resources)))))
            paths[path] = ["serverRelativeURL": .string("/openapi/v3/\(path)?hash=\(hash)")]
        }
        return ["paths": .object(paths)]
    }

    /// The OpenAPI document of one group-version: every resource's operations, with the
    /// `x-kubernetes-group-version-kind` and `fieldValidation` parameter kubectl looks for.
    static func openAPIDocument(groupVersion: String, _ resources: [ServedResource]) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        var schemas: [String: JSONValue] = [:]
        for resource in resources where resource.type.apiVersion == groupVersion {
            let type = resource.type
            let gvk: JSONValue = ["group": .string(type.group), "version": .string(type.version), "kind": .string(type.kind)]
            let schemaName = schemaName(type)
            let reference: JSONValue = ["$ref": .string("#/components/schemas/\(schemaName)")]
            let content: JSONValue = ["application/json": ["schema": reference]]
            func operation(_ verb: String, _ action: String, body: Bool) -> JSONValue {
                var op: [String: JSONValue] = [
                    "operationId": .string("\(verb)\(type.kind)"),
                    "x-kubernetes-action": .string(action),
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": ["200": ["description": "OK", "content": content]],
                ]
                if body {
                    op["requestBody"] = ["content": content, "required": true]
                    op["parameters"] = [
                        ["name": "fieldValidation", "in": "query", "schema": ["type": "string", "uniqueItems": true],
                         "description": "Ignore, Warn or Strict: what to do with unknown or duplicate fields."],
                        ["name": "fieldManager", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
                        ["name": "dryRun", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
                    ]
                }
                return .object(op)
            }
            let collection = type.path(namespace: type.namespaced ? "{namespace}" : nil)
                .replacingOccurrences(of: "%7B", with: "{").replacingOccurrences(of: "%7D", with: "}")
            let item = collection + "/{name}"
            paths[collection] = ["get": operation("list", "list", body: false), "post": operation("create", "post", body: true)]
            paths[item] = [
                "get": operation("read", "get", body: false), "put": operation("replace", "put", body: true),
                "patch": operation("patch", "patch", body: true), "delete": operation("delete", "delete", body: false),
            ]
            if resource.hasStatusSubresource {
                paths[item + "/status"] = [
                    "get": operation("read\(type.kind)Status", "get", body: false),
                    "put": operation("replace\(type.kind)Status", "put", body: true),
                    "patch": operation("patch\(type.kind)Status", "patch", body: true),
                ]
            }
            var schema = resource.schema?.objectValue ?? ["type": "object", "x-kubernetes-preserve-unknown-fields": true]
            schema["x-kubernetes-group-version-kind"] = [gvk]
            schemas[schemaName] = .object(schema)
        }
        return [
            "openapi": "3.0.0",
            "info": ["title": "Kubernetes", "version": "v1.32.0"],
            "paths": .object(paths),
            "components": ["schemas": .object(schemas)],
        ]
    }

    static func schemaName(_ type: ResourceType) -> String {
        let group = type.group.isEmpty ? "io.k8s.api.core" : type.group.split(separator: ".").reversed().joined(separator: ".")
        return "\(group).\(type.version).\(type.kind)"
    }

    private static func stableHash(_ value: JSONValue) -> Int {
        let data = (try? canonicalJSON(value)) ?? Data()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int(truncatingIfNeeded: hash)
    }

    static func canonicalJSON(_ value: JSONValue) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}

/// `meta.k8s.io/v1` Table responses (`kubectl get` asks for them), with a CRD's
/// `additionalPrinterColumns` after `Name`, dates shown as ages the way the server does.
enum TableConversion {
    static func table(_ resource: ServedResource, objects: [JSONValue], resourceVersion: String, now: Date) -> JSONValue {
        var definitions: [JSONValue] = [
            ["name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0],
        ]
        let columns = resource.printerColumns.isEmpty
            ? [ServedResource.PrinterColumn(name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "Time since creation.")]
            : resource.printerColumns
        for column in columns {
            definitions.append(["name": .string(column.name), "type": .string(column.type == "date" ? "string" : column.type),
                                "format": "", "description": .string(column.description), "priority": 0])
        }
        let rows: [JSONValue] = objects.map { object in
            var cells: [JSONValue] = [object["metadata"]?["name"] ?? ""]
            for column in columns {
                let value = object.value(at: column.jsonPath) ?? .null
                if column.type == "date", let text = value.stringValue, let date = KubeTime.parse(text) {
                    cells.append(.string(humanDuration(now.timeIntervalSince(date))))
                } else {
                    cells.append(value)
                }
            }
            var metadata = object["metadata"] ?? [:]
            metadata.set(nil, at: ["managedFields"])
            return ["cells": .array(cells), "object": ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata]]
        }
        return ["kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": ["resourceVersion": .string(resourceVersion)],
                "columnDefinitions": .array(definitions), "rows": .array(rows)]
    }

    /// apimachinery's `duration.HumanDuration`.
    static func humanDuration(_ interval: TimeInterval) -> String {
        if interval < -1 { return "<invalid>" }  // a time in the future, as the real server shows it
        let seconds = Int(max(interval, 0))
        if seconds < 120 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 { return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s" }
        if minutes < 180 { return "\(minutes)m" }
        let hours = minutes / 60
        if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
        if hours < 48 { return "\(hours)h" }
        if hours < 192 { return hours % 24 == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(hours % 24)h" }
        if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
        return "\(hours / 24 / 365)y\((hours / 24) % 365)d"
    }
}
