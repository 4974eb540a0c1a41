/// What S3 accepts as names, in one place for the API's validation (what a tenant writes) and
/// the S3 client (what the CLI is given): neither may depend on the other.
public enum S3Names {
    /// Whether `region` can be a region: 1 to 64 ASCII letters, digits, '-' and '_' (AWS's
    /// `us-east-1`, Ceph's `default`, R2's `auto`). It goes into the AWS host name
    /// (`s3.<region>.amazonaws.com`) and into every signature, so nothing else is let through:
    /// no dot, slash, colon or space can send a request to another host.
    public static func isValidRegion(_ region: String) -> Bool {
        (1...64).contains(region.utf8.count) && region.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }

    /// The rule ``isValidRegion(_:)`` checks, as its error messages say it.
    public static let regionRule = "1 to 64 letters, digits, '-' and '_', such as us-east-1"
}
