import Foundation
import Hummingbird
import KubernetesClient
import Logging
import NIOCore

/// Turns HTTP requests into store operations, with the Kubernetes API's paths, verbs, content
/// types and `Status` errors; serves discovery, OpenAPI and tables; applies authentication and
/// injected faults; logs every request.
struct APIResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let store: ObjectStore
    let faults: Faults
    let authentication: KubernetesTestServer.Authentication
    let address: @Sendable () -> String
    let bookmarkInterval: Duration
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        var request = request
        let method = request.method.rawValue
        let path = request.uri.path
        let latency = await faults.latency(method: method, path: path)
        if latency > .zero { try await Task.sleep(for: latency) }
        try await faults.waitWhileHeld(method: method, path: path)
        let response: Response
        do {
            try authenticate(request)
            if (request.headers[.contentType] ?? "").hasPrefix("application/vnd.kubernetes.protobuf") {
                // As an API server without protobuf answers; clients then resend as JSON.
                response = statusResponse(APIError(code: 415, reason: "UnsupportedMediaType",
                                                   message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/strategic-merge-patch+json"))
            } else if let failure = await faults.take(method: method, path: path) {
                let reason = switch failure.code {
                case 429: "TooManyRequests"
                case 409: "Conflict"  // as if another writer got in first
                default: "InternalError"
                }
                var error = APIError(code: failure.code, reason: reason,
                                     message: "injected fault: HTTP \(failure.code)")
                if failure.code == 429 { error.details = StatusDetails() }
                response = statusResponse(error, retryAfter: failure.retryAfterSeconds)
            } else {
                response = try await route(&request, method: method, path: path)
            }
        } catch let error as APIError {
            response = statusResponse(error)
        } catch let error as Selector.ParseError {
            response = statusResponse(.badRequest("unable to parse requirement: \(error)"))
        } catch let error as DecodingError {
            response = statusResponse(.badRequest("the body of the request is not valid JSON: \(error)"))
        }
        logger.info("\(method) \(path)\(request.uri.query.map { "?\($0)" } ?? "") \(response.status.code)")
        return response
    }

    private func authenticate(_ request: Request) throws {
        guard case .token(let token) = authentication else { return }
        guard request.headers[.authorization] == "Bearer \(token)" else {
            throw APIError(code: 401, reason: "Unauthorized", message: "Unauthorized")
        }
    }

    // MARK: Routing

    private func route(_ request: inout Request, method: String, path: String) async throws -> Response {
        let query = request.uri.queryParameters
        func parameter(_ name: String) -> String? { query[Substring(name)].map { String($0).removingPercentEncoding ?? String($0) } }
        let components = path.split(separator: "/").map(String.init)
        let resources = await store.allResources

        if method == "GET", let document = try discoveryDocument(components, resources) {
            return document
        }

        guard let target = try await resolve(components) else {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        let resource = target.resource
        let strict = parameter("fieldValidation") == "Strict"
        if parameter("dryRun") != nil {
            throw APIError.badRequest("dryRun is not supported by the Kubernetes test server")
        }
        let wantsTable = (request.headers[.accept] ?? "").contains("as=Table")

        switch (method, target.name, target.subresource) {
        case ("GET", nil, nil):
            let labels = try Selector(parsing: parameter("labelSelector"))
            let fields = try Selector(parsing: parameter("fieldSelector"))
            if let watch = parameter("watch"), watch == "true" || watch == "1" {
                return try await watchResponse(
                    resource, namespace: target.namespace, labels: labels, fields: fields,
                    from: parameter("resourceVersion"), timeout: parameter("timeoutSeconds").flatMap(Int.init),
                    bookmarks: parameter("allowWatchBookmarks") == "true", asTable: wantsTable)
            }
            let result = try await store.list(
                resource, namespace: target.namespace, labels: labels, fields: fields,
                limit: parameter("limit").flatMap(Int.init), continueToken: parameter("continue"))
            if wantsTable {
                return json(TableConversion.table(resource, objects: result.items, resourceVersion: result.resourceVersion, now: Date()))
            }
            return json(result.json(of: resource))
        case ("GET", let name?, let subresource) where subresource == nil || subresource == "status":
            let object = try await store.get(resource, namespace: target.namespace, name: name)
            if wantsTable {
                return json(TableConversion.table(resource, objects: [object], resourceVersion: await store.currentResourceVersion, now: Date()))
            }
            return json(object)
        case ("POST", nil, nil):
            let body = try await bodyJSON(&request)
            return json(try await store.create(resource, namespace: target.namespace, body, strict: strict), status: .created)
        case ("PUT", let name?, let subresource) where subresource == nil || (subresource == "status" && resource.hasStatusSubresource):
            let body = try await bodyJSON(&request)
            return json(try await store.update(resource, namespace: target.namespace, name: name, body, subresource: subresource, strict: strict))
        case ("PATCH", let name?, let subresource) where subresource == nil || (subresource == "status" && resource.hasStatusSubresource):
            let contentType = request.headers[.contentType] ?? ""
            let type: ObjectStore.PatchType
            if contentType.hasPrefix("application/merge-patch+json") {
                type = .merge
            } else if contentType.hasPrefix("application/strategic-merge-patch+json") {
                type = .strategicMerge
            } else {
                throw APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json")
            }
            let body = try await bodyJSON(&request)
            return json(try await store.patch(resource, namespace: target.namespace, name: name, body, type: type, subresource: subresource, strict: strict))
        case ("DELETE", let name?, nil):
            var options = try await optionalBodyJSON(&request)
            if let policy = parameter("propagationPolicy") { options = Patches.mergePatch(options ?? [:], ["propagationPolicy": .string(policy)]) }
            return json(try await store.delete(resource, namespace: target.namespace, name: name, options: options))
        default:
            throw APIError.methodNotAllowed
        }
    }

    /// Discovery, OpenAPI and health endpoints; nil for anything else.
    private func discoveryDocument(_ components: [String], _ resources: [ServedResource]) throws -> Response? {
        let c = components
        if c == ["version"] { return json(Discovery.version()) }
        if c == ["api"] { return json(Discovery.coreVersions(address: address())) }
        if c == ["apis"] { return json(Discovery.groups(resources)) }
        if c.count == 2, c[0] == "api" { return json(Discovery.resourceList(groupVersion: c[1], resources)) }
        if c.count == 3, c[0] == "apis" {
            guard resources.contains(where: { $0.type.group == c[1] && $0.type.version == c[2] }) else {
                throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
            }
            return json(Discovery.resourceList(groupVersion: "\(c[1])/\(c[2])", resources))
        }
        if c == ["openapi", "v3"] { return json(Discovery.openAPIRoot(resources)) }
        if c.count == 4, c[0] == "openapi", c[1] == "v3", c[2] == "api" {
            return json(Discovery.openAPIDocument(groupVersion: c[3], resources))
        }
        if c.count == 5, c[0] == "openapi", c[1] == "v3", c[2] == "apis" {
            return json(Discovery.openAPIDocument(groupVersion: "\(c[3])/\(c[4])", resources))
        }
        if c == ["healthz"] || c == ["readyz"] || c == ["livez"] {
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: "ok")))
        }
        return nil
    }

    private struct Target {
        var resource: ServedResource
        var namespace: String?
        var name: String?
        var subresource: String?
    }

    /// `/api/v1[/namespaces/ns]/plural[/name[/sub]]` and `/apis/group/version/...`.
    private func resolve(_ components: [String]) async throws -> Target? {
        let group: String, version: String, rest: ArraySlice<String>
        if components.first == "api", components.count >= 3 {
            (group, version, rest) = ("", components[1], components[2...])
        } else if components.first == "apis", components.count >= 4 {
            (group, version, rest) = (components[1], components[2], components[3...])
        } else {
            return nil
        }
        let parts = Array(rest)
        if parts.count >= 3, parts[0] == "namespaces",
           let resource = await store.resource(group: group, version: version, plural: parts[2]), resource.type.namespaced {
            guard parts.count <= 5 else { return nil }
            return Target(resource: resource, namespace: parts[1], name: parts.count > 3 ? parts[3] : nil, subresource: parts.count > 4 ? parts[4] : nil)
        }
        guard parts.count <= 3, let resource = await store.resource(group: group, version: version, plural: parts[0]) else { return nil }
        return Target(resource: resource, namespace: nil, name: parts.count > 1 ? parts[1] : nil, subresource: parts.count > 2 ? parts[2] : nil)
    }

    // MARK: Watch

    private func watchResponse(
        _ resource: ServedResource, namespace: String?, labels: Selector, fields: Selector, from version: String?,
        timeout: Int?, bookmarks: Bool, asTable: Bool
    ) async throws -> Response {
        let (id, initial, stream) = try await store.watch(resource, namespace: namespace, labels: labels, fields: fields, from: version)
        let store = self.store
        let interval = bookmarkInterval
        let duration = Duration.seconds(timeout ?? 1800)
        let body = ResponseBody { writer in
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await Task.sleep(for: duration)
                        await store.stopWatch(id)
                    }
                    if bookmarks {
                        group.addTask {
                            while true {
                                try await Task.sleep(for: interval)
                                await store.bookmark(id)
                            }
                        }
                    }
                    let table = asTable ? resource : nil
                    for message in initial {
                        if try await Self.write(message, table: table, to: &writer) { await store.stopWatch(id) }
                    }
                    for await message in stream {
                        if try await Self.write(message, table: table, to: &writer) { await store.stopWatch(id) }
                    }
                    group.cancelAll()
                }
            } catch {
                await store.stopWatch(id)  // the client went away
            }
            try? await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json", .transferEncoding: "chunked"], body: body)
    }

    /// Writes one watch line; returns true when the watch must end (an ERROR was sent).
    /// With `table`, objects are sent as one-row Tables, as `kubectl get --watch` asks.
    private static func write(_ message: ObjectStore.WatchMessage, table: ServedResource?, to writer: inout any ResponseBodyWriter) async throws -> Bool {
        let (line, ends) = try message.line(asTableOf: table)
        try await writer.write(ByteBuffer(bytes: line))
        return ends
    }

    // MARK: Bodies

    private func bodyJSON(_ request: inout Request) async throws -> JSONValue {
        guard let value = try await optionalBodyJSON(&request) else { throw APIError.badRequest("the request has no body") }
        return value
    }

    private func optionalBodyJSON(_ request: inout Request) async throws -> JSONValue? {
        let buffer = try await request.collectBody(upTo: 64 * 1024 * 1024)
        guard buffer.readableBytes > 0 else { return nil }
        return try JSONValue.parse(Data(buffer.readableBytesView))
    }

    private func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? Discovery.canonicalJSON(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func statusResponse(_ error: APIError, retryAfter: Int? = nil) -> Response {
        var response = json((try? JSONValue(encoding: error.status)) ?? [:], status: HTTPResponse.Status(code: error.code))
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }
}
