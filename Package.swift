// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "talos-etcd-backup",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "talos-etcd-backup", targets: ["talos-etcd-backup"]),
        .library(name: "CustomResources", targets: ["CustomResources"]),
        .library(name: "Cron", targets: ["Cron"]),
        // For the fuzz targets (Fuzz/, scripts/fuzz): the parsers of untrusted bytes.
        .library(name: "Timestamps", targets: ["Timestamps"]),
        .library(name: "EndpointPolicy", targets: ["EndpointPolicy"]),
        .library(name: "Bbolt", targets: ["Bbolt"]),
        .library(name: "Age", targets: ["Age"]),
        .library(name: "S3Responses", targets: ["S3Responses"]),
        .library(name: "TalosMessages", targets: ["TalosMessages"]),
        .library(name: "TalosConfiguration", targets: ["TalosConfiguration"]),
        .library(name: "SnapshotTrailer", targets: ["SnapshotTrailer"]),
        .library(name: "KubernetesCore", targets: ["KubernetesCore"]),
        .library(name: "Zstd", targets: ["Zstd"]),
        .library(name: "KubeconfigDocument", targets: ["KubeconfigDocument"]),
        .library(name: "ConfigurationFiles", targets: ["ConfigurationFiles"]),
        .library(name: "ControlPlaneState", targets: ["ControlPlaneState"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Calendar arithmetic and RFC 3339: the one time codec, I/O-free.
        .target(name: "Timestamps", path: "Sources/Support/Timestamps"),
        // How long and until what a task waits: deadlines and idle timeouts for awaits that have
        // no bound of their own, backoff between retries, latches.
        .target(name: "Waiting", path: "Sources/Support/Waiting"),
        // glibc malloc's settings for the long-running operator (mallopt, from a C header that
        // Swift's Glibc module leaves out).
        .target(name: "CMalloc", path: "Sources/Support/CMalloc"),
        .target(name: "AllocatorSettings", dependencies: [.target(name: "CMalloc", condition: .when(platforms: [.linux]))],
                path: "Sources/Support/AllocatorSettings"),
        // /proc files read to their end (Foundation stops at 4 KiB there).
        .target(name: "ProcFS", path: "Sources/Support/ProcFS"),
        // What kubeconfig and talosconfig readers share: reading their YAML (never quoting it in an
        // error), the error that names file, context and field, and what a decoding error says
        // about the field at fault.
        .target(name: "ConfigurationFiles", dependencies: [.product(name: "Yams", package: "Yams")], path: "Sources/Support/ConfigurationFiles"),
        // A kubeconfig file's contents and the merge of several, read without I/O.
        .target(name: "KubeconfigDocument", dependencies: ["ConfigurationFiles"], path: "Sources/Kubernetes/KubeconfigDocument"),
        // The one builder of client TLS settings (Kubernetes API, S3, Talos) from PEM fields.
        .target(name: "ClientTLS", dependencies: ["ConfigurationFiles", .product(name: "NIOSSL", package: "swift-nio-ssl")], path: "Sources/Support/ClientTLS"),
        // Cron expressions: parsing, next-run computation in a time zone, DST policy.
        .target(name: "Cron", dependencies: ["Timestamps"], path: "Sources/Support/Cron"),
        // CRD types, defaults, validation and CRD manifest generation.
        .target(name: "CustomResources", dependencies: ["Cron", "KubernetesCore", "Age", "S3Names", .product(name: "Yams", package: "Yams")], path: "Sources/Operator/CustomResources"),
        // What S3 accepts as names (regions), shared by the API's validation and the S3 client.
        .target(name: "S3Names", path: "Sources/Storage/S3Names"),
        // Which hosts the operator may reach for a tenant: denied networks, allow-lists.
        .target(name: "EndpointPolicy", path: "Sources/Support/EndpointPolicy"),
        // What the API's objects are, without I/O: metadata, conditions, times, lists, Status
        // and API errors, resource types (as kube-core is to kube-client).
        .target(name: "KubernetesCore", dependencies: ["Timestamps", "ConfigurationFiles"], path: "Sources/Kubernetes/KubernetesCore"),
        // Our Kubernetes client: configuration, REST, watch; the KubernetesAPI seam.
        .target(
            name: "KubernetesClient",
            dependencies: [
                "KubernetesCore", "Timestamps", "Waiting", "ConfigurationFiles", "ClientTLS", "KubeconfigDocument",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Sources/Kubernetes/KubernetesClient"
        ),
        .target(
            name: "ControllerRuntime",
            dependencies: [
                "KubernetesClient", "Waiting",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            path: "Sources/Kubernetes/ControllerRuntime"
        ),
        // S3's XML answers read into values (and the one document the client writes), no I/O.
        .target(name: "S3Responses", dependencies: ["Timestamps"], path: "Sources/Storage/S3Responses"),
        .target(
            name: "S3",
            dependencies: [
                "Waiting", "ClientTLS", "S3Names", "S3Responses", "Timestamps",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Storage/S3"
        ),
        // The Talos API's messages, generated by swift-protobuf from Protos/ (no gRPC), and the
        // EtcdSnapshot response's deframer (SnapshotResponseDeframer).
        .target(
            name: "TalosMessages",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf"), .product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/Talos/TalosMessages",
            // The .proto sources of Generated/ (regenerate with scripts/generate-talos-api).
            exclude: ["Protos"]
        ),
        // talosconfig files: contexts, endpoints, the client certificate and key, checked.
        .target(
            name: "TalosConfiguration",
            dependencies: [
                "ConfigurationFiles",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Sources/Talos/TalosConfiguration"
        ),
        // An etcd snapshot's 32-byte SHA-256 trailer, checked as the bytes pass (ByteBuffers).
        .target(
            name: "SnapshotTrailer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Snapshot/SnapshotTrailer"
        ),
        .target(
            name: "TalosAPI",
            dependencies: [
                "ConfigurationFiles", "ClientTLS", "TalosMessages", "TalosConfiguration", "SnapshotTrailer",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Sources/Talos/TalosAPI"
        ),
        // The operator's HTTP endpoints: /healthz and /readyz for the kubelet, /metrics for
        // Prometheus (services of the manager).
        .target(
            name: "OperatorEndpoints",
            dependencies: [
                "ControllerRuntime", "ProcFS",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Operator/OperatorEndpoints"
        ),
        // libzstd (Debian libzstd-dev) and the streaming compressor over it.
        .systemLibrary(name: "CZstd", path: "Sources/Snapshot/CZstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "Zstd", dependencies: ["CZstd"], path: "Sources/Snapshot/Zstd"),
        // bbolt's page layout: an etcd snapshot's structure checked as it streams (issue 14).
        .target(name: "Bbolt", path: "Sources/Snapshot/Bbolt"),
        // age v1 (C2SP): X25519 recipients, streaming encryption and decryption; no Kubernetes, no I/O.
        .target(name: "Age", dependencies: [.product(name: "Crypto", package: "swift-crypto")], path: "Sources/Snapshot/Age"),
        // Everything between a byte source and a store, with no Kubernetes in it: the snapshot
        // checks (trailer, bbolt structure, digest), zstd/age encoding and decoding, the stall
        // watchdog, the Talos -> S3 transfer, restore, verify and recover.
        .target(
            name: "SnapshotPipeline",
            dependencies: [
                "S3", "TalosAPI", "Waiting", "Age", "Zstd", "Bbolt",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Snapshot/SnapshotPipeline"
        ),
        // What a TalosEtcdBackup names, resolved: the Secrets it reads (S3 credentials,
        // talosconfig, recipients), its status as a stored backup's record, and the failure
        // reasons that name what to fix. Shared by the operator and the CLI's --backup source.
        // The control plane's state Secret as the manifest stored beside a snapshot: written,
        // and read back (a parser of stored bytes, fuzzed).
        .target(name: "ControlPlaneState", dependencies: ["ConfigurationFiles", "KubernetesCore"], path: "Sources/Operator/ControlPlaneState"),
        .target(
            name: "BackupResolution",
            dependencies: ["SnapshotPipeline", "CustomResources", "KubernetesClient", "S3", "TalosAPI", "Bbolt", "ControlPlaneState"],
            path: "Sources/Operator/BackupResolution"
        ),
        // The two reconcilers, adoption, retention, metrics: the operator itself.
        .target(
            name: "BackupOperator",
            dependencies: [
                "SnapshotPipeline", "BackupResolution",
                "CustomResources", "ControllerRuntime", "S3", "TalosAPI", "Cron", "Waiting", "ConfigurationFiles", "Age", "Timestamps",
                "EndpointPolicy",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Operator/BackupOperator"
        ),
        // A throwaway certificate authority: the one place test servers get certificates.
        .target(
            name: "TestCertificates",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/Support/TestCertificates"
        ),
        .target(
            name: "KubernetesTesting",
            dependencies: [
                "KubernetesClient", "TestCertificates", "TestProcesses",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support/KubernetesTesting"
        ),
        .executableTarget(
            name: "kubernetes-test-server",
            dependencies: [
                "KubernetesTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Tests/Support/kubernetes-test-server"
        ),
        .target(
            name: "TalosTesting",
            dependencies: [
                "Bbolt",
                "TalosAPI", "TestCertificates",
                "TestProcesses",
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/Support/TalosTesting"
        ),
        .executableTarget(
            name: "talos-etcd-backup",
            dependencies: [
                "AllocatorSettings",
                "Cron",
                "EndpointPolicy",
                "Timestamps",
                "CustomResources",
                "TalosAPI",
                "BackupOperator",
                "BackupResolution",
                "ControlPlaneState",
                "SnapshotPipeline",
                "KubernetesClient",
                "ControllerRuntime",
                "OperatorEndpoints",
                "S3",
                "Age",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Executables/talos-etcd-backup",
            linkerSettings: [
                // Release builds (the image's): lld rather than gold, for two things that cost
                // the operator about 9 MiB of resident memory (docs/performance.md, the control
                // plane): the 156,000 relative relocations of a position-independent Swift
                // binary packed (DT_RELR: 50 KiB instead of 3.6 MiB; the binary then needs
                // glibc 2.36 or later), and no 61,000 symbols exported for nobody (the driver's
                // --export-dynamic). So the stripped image binary names no function in a crash
                // trace, and dlsym finds none of its own symbols (nothing here looks one up).
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"],
                             .when(platforms: [.linux], configuration: .release)),
            ]
        ),
        .executableTarget(
            name: "talos-test-server",
            dependencies: [
                "TalosTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Tests/Support/talos-test-server"
        ),
        // /proc figures and durations, shared by the benchmarks.
        .target(name: "BenchmarkSupport", dependencies: ["ProcFS"], path: "Benchmarks/BenchmarkSupport"),
        .executableTarget(
            name: "PipelineBenchmark",
            dependencies: ["BenchmarkSupport", "SnapshotPipeline", "TalosAPI", "S3", "Age", "AllocatorSettings"],
            path: "Benchmarks/PipelineBenchmark"
        ),
        .executableTarget(
            name: "EncodingBenchmark",
            dependencies: ["BenchmarkSupport", "Age", "Zstd", "Bbolt"],
            path: "Benchmarks/EncodingBenchmark"
        ),
        .executableTarget(
            name: "OperatorBenchmark",
            dependencies: ["BenchmarkSupport", "KubernetesClient", "CustomResources"],
            path: "Benchmarks/OperatorBenchmark"
        ),
        .executableTarget(
            name: "CronBenchmark",
            dependencies: ["Cron"],
            path: "Benchmarks/CronBenchmark"
        ),
        .executableTarget(
            name: "KubernetesBenchmark",
            dependencies: ["BenchmarkSupport", "KubernetesClient", "ControllerRuntime", "CustomResources"],
            path: "Benchmarks/KubernetesBenchmark"
        ),
        .executableTarget(
            name: "S3Benchmark",
            dependencies: ["BenchmarkSupport", "S3", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto")],
            path: "Benchmarks/S3Benchmark"
        ),
        // The S3 test servers scripts/test starts, for the S3 and end-to-end tests.
        .target(name: "S3TestSupport", dependencies: ["S3", "TestSupport"], path: "Tests/Support/S3TestSupport"),
        .testTarget(
            name: "S3Tests",
            dependencies: [
                "S3", "S3Responses",
                "S3TestSupport",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // Child processes and a real etcd, for tests, benchmarks and the test servers; no
        // Testing library, so the test doubles (Tests/Support) can use it.
        .target(
            name: "TestProcesses",
            dependencies: [
                "Waiting", "ProcFS",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/Support/TestProcesses"
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "TestProcesses",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/Support/TestSupport"),
        // Tests come in three tiers, by what they start (scripts/test runs each tier as a stage):
        // - unit: in memory, no child process, no port: CronTests, CustomResourcesTests,
        //   WaitingTests, SnapshotPipelineUnitTests, ControllerRuntimeUnitTests, TalosAPIUnitTests,
        //   S3UnitTests, BboltUnitTests, BackupOperatorUnitTests (`scripts/test --unit`);
        // - integration: real etcd, moto and Ceph RGW, the Talos and Kubernetes test servers,
        //   kubectl and the age/zstd/etcdctl/promtool CLIs: every other target but EndToEndTests;
        // - end to end: the operator as a process, podman, Prometheus: EndToEndTests.
        .testTarget(name: "CronTests", dependencies: ["Cron", "Timestamps"]),
        .testTarget(name: "WaitingTests", dependencies: ["Waiting", "TestSupport"]),
        .testTarget(
            name: "SnapshotPipelineUnitTests",
            dependencies: [
                "SnapshotPipeline", "Age", "Bbolt", "SnapshotTrailer",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "ControllerRuntimeUnitTests",
            dependencies: ["ControllerRuntime", "KubernetesClient", "KubernetesTesting", "Waiting", "TestSupport"]
        ),
        .testTarget(
            name: "TalosAPIUnitTests",
            dependencies: [
                "TalosAPI", "ConfigurationFiles",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(name: "S3UnitTests", dependencies: ["S3", "S3Responses"]),
        .testTarget(name: "BboltUnitTests", dependencies: ["Bbolt"]),
        // The Kubernetes API in memory for the reconciler tests of both tiers.
        .target(
            name: "ReconcilerTestSupport",
            dependencies: ["BackupOperator", "ControllerRuntime", "KubernetesClient", "KubernetesTesting", "CustomResources", "TestSupport"],
            path: "Tests/Support/ReconcilerTestSupport"
        ),
        .testTarget(
            name: "BackupOperatorUnitTests",
            dependencies: [
                "BackupOperator", "SnapshotPipeline", "BackupResolution", "ControlPlaneState", "ControllerRuntime", "Cron", "CustomResources", "KubernetesClient", "KubernetesTesting",
                "OperatorEndpoints", "S3", "TalosAPI", "ReconcilerTestSupport", "TestSupport", "EndpointPolicy", "AllocatorSettings", "ProcFS",
            ]
        ),
        // The cron engine against PyPI croniter (a Python process): integration.
        .testTarget(name: "CronOracleTests", dependencies: ["Cron", "TestSupport"]),
        .testTarget(
            name: "TalosAPITests",
            dependencies: [
                "TalosAPI", "TalosMessages", "TalosTesting", "TestSupport", "ConfigurationFiles",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "CustomResourcesTests",
            dependencies: ["CustomResources", "Cron", "KubernetesClient", "TestSupport", .product(name: "Yams", package: "Yams")]
        ),
        .testTarget(name: "CLITests", dependencies: ["talos-etcd-backup", "talos-test-server", "TestSupport", "Waiting", "S3TestSupport", "TalosTesting", .product(name: "Crypto", package: "swift-crypto")]),
        // The operator as a separate process against the Kubernetes test server, moto with
        // authentication, and the Talos test server on a real etcd.
        // The reconcilers called step by step against the Kubernetes test server (and moto and
        // the Talos test server for the backup reconciler), with a clock set by hand.
        .testTarget(
            name: "BackupOperatorTests",
            dependencies: [
                "BackupOperator", "SnapshotPipeline", "BackupResolution", "ControllerRuntime", "Cron", "CustomResources", "KubernetesClient", "KubernetesTesting",
                "TalosTesting", "TalosAPI", "S3", "S3TestSupport", "TestSupport", "OperatorEndpoints", "Age", "Bbolt", "ReconcilerTestSupport", "Waiting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "ZstdTests", dependencies: ["Zstd", "TestSupport"]),
        .testTarget(name: "BboltTests", dependencies: ["Bbolt", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "AgeTests", dependencies: ["Age", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "talos-etcd-backup", "kubernetes-test-server", "BackupOperator", "SnapshotPipeline", "ControllerRuntime", "CustomResources", "KubernetesClient",
                "KubernetesTesting", "TalosTesting", "TalosAPI", "S3", "S3Responses", "S3TestSupport", "TestSupport", "Waiting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "KubernetesTests",
            dependencies: [
                "KubernetesClient", "ControllerRuntime", "KubernetesTesting", "CustomResources", "kubernetes-test-server", "TestSupport", "OperatorEndpoints", "Waiting",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ]
)
