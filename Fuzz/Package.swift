// swift-tools-version: 6.0
// The fuzz targets: one executable per parser of untrusted bytes, built only with
// `swift build --sanitize=fuzzer --sanitize=address` (libFuzzer supplies `main`), through
// scripts/fuzz. A package of its own, so that the project's own build never links them.
import PackageDescription

let root = "talos-etcd-backup"

let package = Package(
    name: "talos-etcd-backup-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: root, path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .executableTarget(name: "FuzzCron", dependencies: [.product(name: "Cron", package: root)]),
        .executableTarget(name: "FuzzTimestamps", dependencies: [.product(name: "Timestamps", package: root)]),
        .executableTarget(name: "FuzzEndpointPolicy", dependencies: [.product(name: "EndpointPolicy", package: root)]),
        .executableTarget(name: "FuzzBbolt", dependencies: [.product(name: "Bbolt", package: root)]),
        .executableTarget(name: "FuzzAge", dependencies: [.product(name: "Age", package: root)]),
        .executableTarget(name: "FuzzZstd", dependencies: [.product(name: "Zstd", package: root)]),
        .executableTarget(name: "FuzzS3Responses", dependencies: [.product(name: "S3Responses", package: root)]),
        .executableTarget(name: "FuzzTalosMessages", dependencies: [
            .product(name: "TalosMessages", package: root), .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .executableTarget(name: "FuzzTalosconfig", dependencies: [.product(name: "TalosConfiguration", package: root)]),
        .executableTarget(name: "FuzzSnapshotTrailer", dependencies: [
            .product(name: "SnapshotTrailer", package: root), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "FuzzKubeconfig", dependencies: [
            .product(name: "KubeconfigDocument", package: root), .product(name: "ConfigurationFiles", package: root),
        ]),
        .executableTarget(name: "FuzzStateManifest", dependencies: [
            .product(name: "ControlPlaneState", package: root), .product(name: "ConfigurationFiles", package: root),
        ]),
        .executableTarget(name: "FuzzKubernetesObjects", dependencies: [
            .product(name: "KubernetesCore", package: root), .product(name: "CustomResources", package: root),
        ]),
    ]
)
