import ArgumentParser
import Foundation
import S3
import SnapshotPipeline

/// The options of a command that reads or writes `s3://BUCKET/KEY` outside a cluster
/// (`snapshot --output`, `restore --from`): where the bucket is, and the credentials from the
/// environment, as the AWS CLI finds them.
struct S3Options: ParsableArguments {
    @Option(help: "Region of the bucket (for s3:// locations).")
    var s3Region: String = "us-east-1"

    @Option(help: "S3-compatible endpoint URL (default: AWS for the region); path-style addressing is used with it.")
    var s3Endpoint: String?

    @Option(help: "File holding the SSE-C key of the s3:// object (32 bytes, or their base64), sent with every request for its bytes.")
    var s3SSECustomerKeyFile: String?

    /// `url` (`s3://BUCKET/KEY`, given as `flag`) with the credentials the environment names, as
    /// the AWS SDKs find them (``AmbientCredentials``: keys, web identity, a container endpoint).
    func destination(_ url: String, flag: String) throws -> BackupDestination {
        let location = url.dropFirst("s3://".count)
        guard url.hasPrefix("s3://"), let slash = location.firstIndex(of: "/"), slash != location.startIndex,
              location.index(after: slash) != location.endIndex else {
            throw ValidationError("\(flag) \(url): expected s3://BUCKET/KEY")
        }
        let found: AmbientCredentials?
        do {
            found = try AmbientCredentials.fromEnvironment(ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError("\(flag) s3://...: \(error)")
        }
        guard let found else {
            throw ValidationError("\(flag) s3://... needs credentials in the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary keys), AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or AWS_CONTAINER_CREDENTIALS_FULL_URI")
        }
        var configuration = S3Configuration(region: s3Region, endpoint: s3Endpoint, credentials: found.source)
        if let path = s3SSECustomerKeyFile {
            configuration.writeSettings = S3WriteSettings(serverSideEncryption: .customerKey(try Self.customerKey(path)))
        }
        return BackupDestination(
            s3: configuration,
            bucket: String(location[..<slash]), key: String(location[location.index(after: slash)...]))
    }

    /// An SSE-C key file: 32 bytes, or their base64. Never printed.
    static func customerKey(_ path: String) throws -> S3WriteSettings.CustomerKey {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1024 else {
            throw ValidationError("--s3-sse-customer-key-file \(path): cannot be read, or is larger than 1 KiB")
        }
        guard let key = S3WriteSettings.CustomerKey(stored: Array(data)) else {
            throw ValidationError("--s3-sse-customer-key-file \(path): must hold a 256-bit key, 32 bytes or their base64 (openssl rand -base64 32)")
        }
        return key
    }
}
