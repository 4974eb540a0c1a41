import ArgumentParser
import Foundation
import S3
import SnapshotPipeline

/// The options of a command that reads or writes `s3://BUCKET/KEY` outside a cluster
/// (`snapshot --output`, `restore --from`): where the bucket is, and the credentials from the
/// environment, as the AWS CLI takes them.
struct S3Options: ParsableArguments {
    @Option(help: "Region of the bucket (for s3:// locations).")
    var s3Region: String = "us-east-1"

    @Option(help: "S3-compatible endpoint URL (default: AWS for the region); path-style addressing is used with it.")
    var s3Endpoint: String?

    /// `url` (`s3://BUCKET/KEY`, given as `flag`) with credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY.
    func destination(_ url: String, flag: String) throws -> BackupDestination {
        let location = url.dropFirst("s3://".count)
        guard url.hasPrefix("s3://"), let slash = location.firstIndex(of: "/"), slash != location.startIndex,
              location.index(after: slash) != location.endIndex else {
            throw ValidationError("\(flag) \(url): expected s3://BUCKET/KEY")
        }
        let environment = ProcessInfo.processInfo.environment
        guard let accessKeyID = environment["AWS_ACCESS_KEY_ID"], let secretAccessKey = environment["AWS_SECRET_ACCESS_KEY"] else {
            throw ValidationError("\(flag) s3://... needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
        }
        return BackupDestination(
            s3: S3Configuration(region: s3Region, endpoint: s3Endpoint,
                                credentials: S3Credentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey)),
            bucket: String(location[..<slash]), key: String(location[location.index(after: slash)...]))
    }
}
