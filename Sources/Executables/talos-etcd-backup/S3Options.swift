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
        return BackupDestination(
            s3: S3Configuration(region: s3Region, endpoint: s3Endpoint, credentials: found.source),
            bucket: String(location[..<slash]), key: String(location[location.index(after: slash)...]))
    }
}
