// swift-tools-version: 6.0
import PackageDescription

/// The transport and the load engine run per request: skip the runtime exclusivity checks there (they cost
/// about 4% of client CPU per request in `bench/h2load-vs-meshprobe.sh`); the compiler still checks statically.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"])]

let package = Package(
    name: "meshprobe",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "meshprobe", targets: ["meshprobe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // C libraries from Debian, each imported by exactly one Swift module.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),

        // Identity & classification: SPIFFE IDs, workload identities, error kinds, the echo stamp contract; and the
        // rules for what comes in: text made printable, files read only when regular and within their kind's limit.
        .target(name: "MeshprobeIdentity"),

        // Transport: TLS on OpenSSL (the only importer of COpenSSL), SVIDs, SPIFFE peer verification, lab PKI.
        .target(
            name: "MeshprobeTLS",
            dependencies: [
                "COpenSSL",
                "MeshprobeIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: hotPath
        ),
        // Transport: HTTP/2 sessions on nghttp2 (the only importer of CNGHTTP2), client and server.
        .target(
            name: "MeshprobeHTTP2",
            dependencies: [
                "CNGHTTP2",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: hotPath
        ),

        // Transport: HTTP/1.1 on NIOHTTP1, a peer of HTTP/2: the engine's keep-alive client handler, and one-request
        // exchanges for the small control calls around a run (Pushgateway, sidecar admin, shard results, the echo's
        // fault API).
        .target(
            name: "MeshprobeHTTP1",
            dependencies: [
                "MeshprobeTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: hotPath
        ),

        // Latency histograms: their shape (`LatencyHistogram`, `latency()`, `timelineLatency()`), HdrHistogram's
        // lossless compressed V2 encoding, used by the engine (each finished second's latency histogram, kept
        // compressed) and by the reports (results and their exact merge); percentiles (`highestEquivalentValue`),
        // means and merges of `Histogram<UInt64>` in code specialised for its counts.
        .target(
            name: "MeshprobeHistogram",
            dependencies: [
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                // zlib, for HdrHistogram's compressed V2 encoding.
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),

        // The inputs' types (rate, churn, stage, HTTP version, arrivals, guards), each with one parse and one message,
        // read the same way from flags and files, and the load plan they make up (targets, model, requests, flows,
        // CSV rows, signatures); no NIO, no engine.
        // gRPC on the HTTP/2 transport: length-prefixed messages (identity and gzip), the reserved headers' rules
        // (status, message, timeout), and the protobuf messages meshprobe speaks (generated code, committed).
        .target(
            name: "MeshprobeGRPC",
            dependencies: [
                "MeshprobeIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),

        .target(name: "MeshprobeSpec", dependencies: ["MeshprobeIdentity"]),

        // The load engine (`LoadGenerator`): connections x streams on one event loop per usable core.
        .target(
            name: "MeshprobeLoad",
            dependencies: [
                "MeshprobeSpec",
                "MeshprobeIdentity",
                "MeshprobeHistogram",
                "MeshprobeTLS",
                "MeshprobeHTTP1",
                "MeshprobeHTTP2",
                "MeshprobeGRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: hotPath
        ),
        // Where a run's SVID comes from when it rotates: the SPIFFE Workload API (a FetchX509SVID stream on the agent's
        // Unix socket, over the HTTP/2 transport) and watched SVID files; each update becomes a new TLS context.
        .target(
            name: "MeshprobeSVIDSource",
            dependencies: [
                "MeshprobeIdentity",
                "MeshprobeSpec",
                "MeshprobeTLS",
                "MeshprobeHTTP2",
                "MeshprobeGRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // The echo's control API as a contract: the JSON bodies, the rules a fault's settings must meet, the path.
        // The echo serves it and the clients (`meshprobe fault`, the checks, game days) call it; no NIO, no server.
        .target(name: "MeshprobeEchoAPI", dependencies: ["MeshprobeIdentity", "MeshprobeYAML"]),
        // The echo workload: identity stamps, caller identity, in-flight count, fault injection; HTTP and gRPC.
        .target(
            name: "MeshprobeEcho",
            dependencies: [
                "MeshprobeEchoAPI",
                "MeshprobeIdentity",
                "MeshprobeTLS",
                "MeshprobeHTTP2",
                "MeshprobeGRPC",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // YAML with positions: typed reads whose errors name the file, line and field (scenario, policy and game-day
        // files, mesh manifests).
        .target(
            name: "MeshprobeYAML",
            dependencies: ["MeshprobeIdentity", .product(name: "Yams", package: "Yams")]
        ),
        // Scenario files: a load run as reviewed YAML (`meshprobe run FILE.yaml`).
        .target(
            name: "MeshprobeScenario",
            dependencies: ["MeshprobeYAML", "MeshprobeSpec", "MeshprobeIdentity", "MeshprobeGRPC"]
        ),
        // Verification statistics: sequential split tests with stated error rates (per connection, per request), SLO
        // share bounds, routing models, the propagation stability check.
        .target(name: "MeshprobeStatistics"),
        // Declarations: meshprobe policy and game-day files and mesh manifests turned into expectations, route
        // matching (a linear-time regex engine), the declared resilience settings. No NIO, nothing that drives load:
        // the load a policy carries is a `LoadPlan` (`MeshprobeSpec`).
        .target(
            name: "MeshprobePolicy",
            dependencies: ["MeshprobeYAML", "MeshprobeScenario", "MeshprobeStatistics", "MeshprobeSpec", "MeshprobeIdentity", "MeshprobeEchoAPI"]
        ),
        // Checks: the procedures that drive the engine to check the declarations (split verification and SLOs,
        // circuit breakers, retries, outlier detection, game days) and the echo's control-API client for injected faults.
        .target(
            name: "MeshprobeChecks",
            dependencies: [
                "MeshprobePolicy", "MeshprobeStatistics", "MeshprobeLoad", "MeshprobeSpec", "MeshprobeIdentity", "MeshprobeEchoAPI", "MeshprobeTLS",
                "MeshprobeHTTP1", "MeshprobeYAML", "MeshprobeGRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The lab: HAProxy configurations standing in for a sidecar (L7 weighted, header routes, L4), and their launcher,
        // for `demo` and the tests.
        .target(
            name: "MeshprobeLab",
            dependencies: [
                "MeshprobePolicy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Reporting: terminal summary, the versioned JSON results (load, verify, game day) and their exact merges,
        // Prometheus (live endpoint, end-of-run file, Pushgateway over http or https), interop exports (SMP, .hgrm),
        // and the report views (JUnit XML, HTML, the verdict table).
        .target(
            name: "MeshprobeReport",
            dependencies: [
                "MeshprobeIdentity",
                "MeshprobeSpec",
                "MeshprobeHistogram",
                "MeshprobeLoad",
                "MeshprobeHTTP1",
                "MeshprobeTLS",
                // The sequential split test, to decide merged verify results again.
                "MeshprobeStatistics",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // swift-prometheus's metrics are swift-metrics (CoreMetrics) handlers; pinned here at 2.13.0.
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Kubernetes: the sidecar lifecycle of a Job in a mesh (wait for the proxy, stop it on exit).
        .target(
            name: "MeshprobeKubernetes",
            dependencies: [
                "MeshprobeHTTP1",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The runner: what runs a command's work between the checks and reports and the command line (a load run with
        // its live view and outcome, the demo's steps, shard aggregation, the sidecar session, signal stoppers, the
        // manifest-merge rules, the report session, the verify result built from the checks' outcomes), so that it is
        // tested without the binary.
        .target(
            name: "MeshprobeRunner",
            dependencies: [
                "MeshprobeIdentity",
                "MeshprobeSpec",
                "MeshprobeHistogram",
                "MeshprobeTLS",
                "MeshprobeHTTP1",
                "MeshprobeLoad",
                "MeshprobeReport",
                "MeshprobePolicy",
                "MeshprobeScenario",
                "MeshprobeChecks",
                "MeshprobeStatistics",
                "MeshprobeYAML",
                "MeshprobeKubernetes",
                // The demo's echo workloads (one with an allow list) and its proxies.
                "MeshprobeEcho",
                "MeshprobeEchoAPI",
                "MeshprobeLab",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The thin command line that wires the modules together.
        // SIGINT and SIGTERM blocked from the moment the binary is loaded until `SignalHub` handles them (a load-time
        // constructor, which Swift cannot write).
        .target(name: "CMeshprobeSignals"),
        .executableTarget(
            name: "meshprobe",
            dependencies: [
                "CMeshprobeSignals",
                "MeshprobeIdentity",
                "MeshprobeSpec",
                "MeshprobeTLS",
                "MeshprobeLoad",
                "MeshprobeGRPC",
                "MeshprobeEcho",
                "MeshprobeEchoAPI",
                "MeshprobeReport",
                "MeshprobeScenario",
                "MeshprobePolicy",
                "MeshprobeChecks",
                "MeshprobeStatistics",
                "MeshprobeYAML",
                "MeshprobeKubernetes",
                "MeshprobeRunner",
                "MeshprobeSVIDSource",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),

        .testTarget(name: "MeshprobeIdentityTests", dependencies: ["MeshprobeIdentity"]),
        .testTarget(name: "MeshprobeGRPCTests", dependencies: ["MeshprobeGRPC", "MeshprobeIdentity", "MeshprobeTestSupport", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(
            name: "MeshprobeSVIDSourceTests",
            dependencies: ["MeshprobeSVIDSource", "MeshprobeSpec", "MeshprobeTLS", "MeshprobeIdentity", "MeshprobeTestSupport", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "MeshprobeSpecTests", dependencies: ["MeshprobeSpec", "MeshprobeIdentity"]),
        .testTarget(
            name: "MeshprobeEchoTests",
            dependencies: [
                "MeshprobeEcho", "MeshprobeEchoAPI", "MeshprobeIdentity", "MeshprobeYAML", "MeshprobeGRPC",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(
            name: "MeshprobeHistogramTests",
            dependencies: ["MeshprobeHistogram", "MeshprobeLoad", "MeshprobeTestSupport", .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        .testTarget(
            name: "MeshprobeLoadTests",
            dependencies: ["MeshprobeLoad", "MeshprobeSpec", "MeshprobeHistogram", .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        .testTarget(name: "MeshprobeStatisticsTests", dependencies: ["MeshprobeStatistics", "MeshprobeLoad", "MeshprobeTestSupport"]),
        .testTarget(name: "MeshprobeKubernetesTests", dependencies: ["MeshprobeKubernetes"]),
        // Test support shared by test targets: the one process runner, background peers and signalled children,
        // free ports, the binaries, the lab PKI fixture, waiting with a deadline, stand-in HTTP servers that record what
        // they were sent, stalled peers, hand-built histogram encodings (decompression bombs). It may depend on the
        // transport and identity modules, never on the engine, policy or reports (they are what the tests check).
        .target(
            name: "MeshprobeTestSupport",
            dependencies: [
                "MeshprobeIdentity",
                "MeshprobeTLS",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/MeshprobeTestSupport"
        ),
        .testTarget(
            name: "MeshprobeReportTests",
            dependencies: [
                "MeshprobeReport", "MeshprobeHistogram", "MeshprobeLoad", "MeshprobeSpec", "MeshprobeIdentity", "MeshprobeTestSupport", "MeshprobeEchoAPI",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "MeshprobePolicyTests", dependencies: ["MeshprobePolicy", "MeshprobeSpec", "MeshprobeStatistics", "MeshprobeIdentity", "MeshprobeYAML"]),
        .testTarget(
            name: "MeshprobeChecksTests",
            dependencies: ["MeshprobeChecks", "MeshprobePolicy", "MeshprobeLoad", "MeshprobeSpec", "MeshprobeStatistics", "MeshprobeIdentity", "MeshprobeYAML"]
        ),
        .testTarget(
            name: "MeshprobeRunnerTests",
            dependencies: [
                "MeshprobeRunner", "MeshprobePolicy", "MeshprobeStatistics", "MeshprobeLoad", "MeshprobeSpec", "MeshprobeHTTP1", "MeshprobeEcho", "MeshprobeReport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "MeshprobeScenarioTests", dependencies: ["MeshprobeScenario", "MeshprobeSpec", "MeshprobeYAML"]),
        .testTarget(
            name: "MeshprobeTLSTests",
            dependencies: [
                "MeshprobeTLS",
                "MeshprobeIdentity",
                "MeshprobeTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MeshprobeHTTP2Tests",
            dependencies: [
                "MeshprobeHTTP2",
                "MeshprobeTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "MeshprobeIdentity",
                "MeshprobeSVIDSource",
                "MeshprobeHistogram",
                "MeshprobePolicy",
                "MeshprobeChecks",
                "MeshprobeLab",
                "MeshprobeTLS",
                "MeshprobeLoad",
                "MeshprobeSpec",
                "MeshprobeEcho",
                "MeshprobeEchoAPI",
                "MeshprobeReport",
                "MeshprobeKubernetes",
                "MeshprobeTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
