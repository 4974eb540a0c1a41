// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "talos-etcd-backup",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "talos-etcd-backup", targets: ["talos-etcd-backup"]),
        .library(name: "TalosBackupAPI", targets: ["TalosBackupAPI"]),
        .library(name: "Cron", targets: ["Cron"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // Cron expressions: parsing, next-run computation in a time zone, DST policy.
        .target(name: "Cron"),
        // CRD types, defaults, validation and CRD manifest generation.
        .target(name: "TalosBackupAPI", dependencies: ["Cron"]),
        // Filled by later issues (see README "Status").
        .target(name: "KubernetesClient"),
        .target(name: "ControllerRuntime", dependencies: ["KubernetesClient"]),
        .target(name: "S3"),
        .target(name: "TalosAPI"),
        .target(name: "BackupOperator", dependencies: ["TalosBackupAPI", "ControllerRuntime", "S3", "TalosAPI"]),
        .target(name: "KubernetesTestServer", dependencies: ["KubernetesClient"]),
        .target(name: "TalosTestServer", dependencies: ["TalosAPI"]),
        .executableTarget(
            name: "talos-etcd-backup",
            dependencies: [
                "Cron",
                "TalosBackupAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "CronBenchmark",
            dependencies: ["Cron"],
            path: "Benchmarks/CronBenchmark"
        ),
        .testTarget(name: "CronTests", dependencies: ["Cron"]),
        .testTarget(
            name: "TalosBackupAPITests",
            dependencies: ["TalosBackupAPI", "Cron", .product(name: "Yams", package: "Yams")]
        ),
        .testTarget(name: "CLITests", dependencies: ["talos-etcd-backup"]),
    ]
)
