import KubernetesClient

/// Patch semantics the test server applies.
enum Patches {
    /// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
    static func mergePatch(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let patchMembers) = patch else { return patch }
        var result = target.objectValue ?? [:]
        for (key, value) in patchMembers {
            if case .null = value {
                result[key] = nil
            } else {
                result[key] = mergePatch(result[key] ?? .null, value)
            }
        }
        return .object(result)
    }

    /// Strategic merge patch, as far as this server's core kinds need it: maps merge like a
    /// merge patch and `$`-directives (`$patch`, `$retainKeys`, `$setElementOrder/...`,
    /// `$deleteFromPrimitiveList/...`) are dropped. None of the core kinds served here
    /// (Secret, ConfigMap, Namespace, Lease, Event) has a list with a patch merge key, so lists
    /// replace, which is what the real server does for them too.
    static func strategicMergePatch(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        mergePatch(target, withoutDirectives(patch))
    }

    private static func withoutDirectives(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            var result: [String: JSONValue] = [:]
            for (key, member) in members where !key.hasPrefix("$") {
                result[key] = withoutDirectives(member)
            }
            return .object(result)
        case .array(let items):
            return .array(items.map(withoutDirectives))
        default:
            return value
        }
    }
}
