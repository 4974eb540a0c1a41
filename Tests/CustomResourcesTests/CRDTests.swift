import KubernetesClient
import Foundation
import CustomResources
import TestSupport
import Testing

@Suite("Generated CRDs")
struct CRDTests {
    @Test("deploy/crds/ holds exactly what `talos-etcd-backup crds` generates (regenerate: scripts/generate-crds)")
    func committedManifestsMatch() throws {
        for crd in CustomResourceDefinitions.all {
            let path = "deploy/crds/" + CustomResourceDefinitions.fileName(of: crd)
            let committed = try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
            #expect(try committed == YAML.render(crd), "\(path) is stale; run scripts/generate-crds")
        }
    }

    @Test("the YAML written parses back to the same tree")
    func yamlRoundTrip() throws {
        #expect(try yamlDocuments(try CustomResourceDefinitions.renderYAML()) == CustomResourceDefinitions.all)
        let tricky: JSONValue = .object([
            "yes": .string("no"), "n": .string("true"), "num": .string("0123"), "float": .string("1.5"),
            "colon": .string("a: b"), "hash": .string("a #b"), "empty": .string(""), "null": .string("null"),
            "dash": .string("- x"), "star": .string("*/5 * * * *"), "quote": .string("say \"hi\"\n"),
            "list": .array([.object(["a": .integer(1), "b": .array([.bool(false)])]), .array([.string("x")]), .object([:])]),
            "emptyList": .array([]), "int": .integer(-7), "bool": .bool(true),
        ])
        #expect(try yamlDocuments(try YAML.render(tricky)) == [tricky])
    }

    @Test("names, scope, subresource, printer columns and categories are as docs/design.md says")
    func names() {
        let schedule = CustomResourceDefinitions.schedule["spec"]!
        #expect(schedule["group"] == .string("talos.alperen.cloud"))
        #expect(schedule["scope"] == .string("Namespaced"))
        #expect(schedule["names"]?["shortNames"] == .array([.string("tebs")]))
        #expect(schedule["names"]?["categories"] == .array([.string("talos")]))
        let backup = CustomResourceDefinitions.backup["spec"]!
        #expect(backup["names"]?["shortNames"] == .array([.string("teb")]))
        func columns(_ spec: JSONValue) -> [String] {
            guard case .array(let versions)? = spec["versions"], case .array(let columns)? = versions[0]["additionalPrinterColumns"]
            else { return [] }
            return columns.compactMap { if case .string(let name)? = $0["name"] { name } else { nil } }
        }
        #expect(columns(schedule) == ["Schedule", "Paused", "Last Backup", "Next Backup", "Age"])
        #expect(columns(backup) == ["Phase", "Size", "Filename", "Age"])
        for spec in [schedule, backup] {
            guard case .array(let versions)? = spec["versions"] else { Issue.record("no versions"); continue }
            #expect(versions.count == 1)
            #expect(versions[0]["name"] == .string("v1alpha1"))
            #expect(versions[0]["subresources"] == .object(["status": .object([:])]))
        }
    }

    @Test("the schema describes exactly the fields the Swift types carry")
    func schemaMatchesTypes() throws {
        for (crd, object) in [(CustomResourceDefinitions.schedule, FullObjects.schedule), (CustomResourceDefinitions.backup, FullObjects.backup)] {
            let schema = try #require(openAPISchema(crd))
            var schemaPaths = Set<String>()
            collectSchemaPaths(schema, path: "", into: &schemaPaths)
            var objectPaths = Set<String>()
            collectValuePaths(object, path: "", into: &objectPaths)
            objectPaths = objectPaths.filter { !$0.hasPrefix("metadata.") }
            schemaPaths = schemaPaths.filter { !$0.hasPrefix("metadata.") }
            #expect(objectPaths.subtracting(schemaPaths).sorted() == [], "fields missing from the schema")
            #expect(schemaPaths.subtracting(objectPaths).sorted() == [], "schema fields the full fixture lacks")
        }
    }

    @Test("every field has a type and a description; defaults are the Defaults constants")
    func descriptionsAndDefaults() throws {
        for crd in CustomResourceDefinitions.all {
            let schema = try #require(openAPISchema(crd))
            var undocumented: [String] = []
            checkDocumented(schema, path: "", into: &undocumented)
            #expect(undocumented == [])
        }
        let spec = try #require(openAPISchema(CustomResourceDefinitions.schedule)?["properties"]?["spec"])
        #expect(spec["properties"]?["retention"]?["default"] == nil, "5 only without retentionPolicy: the operator's default")
        #expect(spec["properties"]?["failedBackupsHistoryLimit"]?["default"] == .integer(Int64(Defaults.failedBackupsHistoryLimit)))
        #expect(spec["properties"]?["backupTemplate"]?["properties"]?["spec"]?["properties"]?["deletionPolicy"]?["default"] == .string("Delete"))
        #expect(spec["properties"]?["backupTemplate"]?["properties"]?["spec"]?["properties"]?["deletionPolicy"]?["enum"] == .array([.string("Delete"), .string("Retain")]))
        #expect(spec["properties"]?["retention"]?["minimum"] == .integer(1))
        #expect(spec["properties"]?["schedule"]?["minLength"] == .integer(1))
        #expect(spec["properties"]?["paused"]?["default"] == .bool(Defaults.paused))
        #expect(spec["properties"]?["concurrencyPolicy"]?["default"] == .string(Defaults.concurrencyPolicy.rawValue))
        #expect(spec["properties"]?["concurrencyPolicy"]?["enum"] == .array([.string("Forbid"), .string("Allow")]))
        #expect(spec["properties"]?["timeZone"]?["default"] == nil)
        #expect(spec["required"] == .array([.string("backupTemplate"), .string("schedule")]))
        let s3 = spec["properties"]?["backupTemplate"]?["properties"]?["spec"]?["properties"]?["backupStorage"]?["properties"]?["s3"]
        #expect(s3?["properties"]?["prefix"]?["default"] == .string(Defaults.s3Prefix))
        #expect(s3?["properties"]?["insecureSkipTLSVerify"]?["default"] == .bool(false))
        #expect(s3?["properties"]?["forcePathStyle"]?["default"] == nil)
        #expect(s3?["required"] == .array(["bucket", "region"].map(JSONValue.string)), "the keys: both or neither, checked by validation")
        let conditions = try #require(openAPISchema(CustomResourceDefinitions.schedule)?["properties"]?["status"]?["properties"]?["conditions"])
        #expect(conditions["x-kubernetes-list-type"] == .string("map"))
        #expect(conditions["x-kubernetes-list-map-keys"] == .array([.string("type")]))
    }

    private func openAPISchema(_ crd: JSONValue) -> JSONValue? {
        guard case .array(let versions)? = crd["spec"]?["versions"] else { return nil }
        return versions.first?["schema"]?["openAPIV3Schema"]
    }

    private func collectSchemaPaths(_ schema: JSONValue, path: String, into paths: inout Set<String>) {
        if case .object(let properties)? = schema["properties"] {
            for (name, property) in properties {
                let child = path.isEmpty ? name : "\(path).\(name)"
                paths.insert(child)
                collectSchemaPaths(property, path: child, into: &paths)
            }
        }
        if let items = schema["items"] { collectSchemaPaths(items, path: path + "[]", into: &paths) }
    }

    private func collectValuePaths(_ value: JSONValue, path: String, into paths: inout Set<String>) {
        switch value {
        case .object(let members):
            for (name, member) in members {
                let child = path.isEmpty ? name : "\(path).\(name)"
                paths.insert(child)
                collectValuePaths(member, path: child, into: &paths)
            }
        case .array(let items):
            for item in items { collectValuePaths(item, path: path + "[]", into: &paths) }
        default:
            break
        }
    }

    /// metadata follows controller-gen: `type: object` only, documented by the API server itself.
    private func checkDocumented(_ schema: JSONValue, path: String, into undocumented: inout [String]) {
        if path != "metadata" {
            if schema["description"] == nil { undocumented.append(path + " (description)") }
            if schema["type"] == nil { undocumented.append(path + " (type)") }
        }
        if case .object(let properties)? = schema["properties"] {
            for (name, property) in properties {
                checkDocumented(property, path: path.isEmpty ? name : "\(path).\(name)", into: &undocumented)
            }
        }
        if let items = schema["items"] { checkDocumented(items, path: path + "[]", into: &undocumented) }
    }
}
