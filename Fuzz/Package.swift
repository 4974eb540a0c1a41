// swift-tools-version: 6.0
// The fuzz targets: one executable per parser of untrusted bytes, built only with
// `swift build --sanitize=fuzzer --sanitize=address` (libFuzzer supplies `main`), through
// scripts/fuzz. A package of its own, so that the project's own build never links them.
import PackageDescription

let package = Package(
    name: "talos-etcd-backup-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "talos-etcd-backup", path: "..")],
    targets: [
        .executableTarget(name: "FuzzCron", dependencies: [.product(name: "Cron", package: "talos-etcd-backup")]),
        .executableTarget(name: "FuzzTimestamps", dependencies: [.product(name: "Timestamps", package: "talos-etcd-backup")]),
        .executableTarget(name: "FuzzEndpointPolicy", dependencies: [.product(name: "EndpointPolicy", package: "talos-etcd-backup")]),
        .executableTarget(name: "FuzzBbolt", dependencies: [.product(name: "Bbolt", package: "talos-etcd-backup")]),
        .executableTarget(name: "FuzzAge", dependencies: [.product(name: "Age", package: "talos-etcd-backup")]),
    ]
)
