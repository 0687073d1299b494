import Foundation
import MeshprobeStatistics
import MeshprobeYAML
import Testing
@testable import MeshprobePolicy

@Suite struct IstioImporterTests {
    var fixture: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/istio/reviews.yaml").path
    }


    @Test func importsHeaderRouteAndWeightedCanaryWithSubsetVersions() throws {
        let imported = try ManifestImporter.importRoutes(files: [fixture], recognizer: .version, statistics: .init())
        #expect(imported.routes.map(\.name) == ["jason", "canary"])
        #expect(imported.routes[0].matchHeaders.map(\.name) == ["end-user"])
        #expect(imported.routes[0].matchHeaders.map(\.value) == ["jason"])
        #expect(imported.routes[0].weights == ["v2": 100])
        #expect(imported.routes[1].weights == ["v1": 90, "v2": 10])
        #expect(imported.routes[1].matchHeaders.isEmpty)
        // Nothing dropped silently: the Service is ignored with a note; the canary's retries become a retry check.
        #expect(imported.notes.contains { $0.contains("ignored Service reviews") })
        #expect(imported.retries.map(\.attempts) == [3] && imported.retries.first?.perTryTimeout == 2)
    }

    @Test func connectionPoolLimitsBecomeCircuitBreakerChecks() throws {
        let path = try writeTemporaryYAML("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews-pool}
            spec:
              host: reviews
              trafficPolicy:
                connectionPool:
                  tcp: {maxConnections: 20}
                  http: {http2MaxRequests: 10, http1MaxPendingRequests: 1, maxRetries: 3, maxRequestsPerConnection: 100}
                outlierDetection: {consecutive5xxErrors: 5}
            """)
        defer { removeTemporary(path) }
        let imported = try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
        let breaker = try #require(imported.circuitBreakers.first)
        #expect(breaker.maxRequests == 10 && breaker.maxPending == 1 && breaker.admitted == 11)
        #expect(breaker.source.hasSuffix(":8 DestinationRule reviews-pool"), "\(breaker.source)")
        #expect(imported.connectionReuse.first?.maxRequestsPerConnection == 100 && imported.connectionReuse.first?.requests == 1000)
        #expect(imported.maxRetries.first?.limit == 3 && imported.maxRetries.first?.source.contains("DestinationRule reviews-pool") == true)
        // Istio's defaults for what the rule leaves out: 10s interval, 30s ejection, 10%.
        let outlier = try #require(imported.outlierDetections.first)
        #expect(outlier.consecutiveErrors == 5 && outlier.counted == .serverErrors && outlier.interval == 10)
        #expect(outlier.baseEjectionTime == 30 && outlier.maxEjectionPercent == 10 && outlier.faultTargets.isEmpty)
        #expect(outlier.source.hasSuffix(":10 DestinationRule reviews-pool"), "\(outlier.source)")
        // Absurd and zero limits are refused with the line.
        for (bad, words) in [("http2MaxRequests: 0", "at least 1"), ("http2MaxRequests: 50000", "too large")] {
            try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "http2MaxRequests: 10", with: bad)
                .write(toFile: path, atomically: true, encoding: .utf8)
            #expect {
                try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
            } throws: { error in
                guard let e = error as? YAMLInputError else { return false }
                return e.line == 9 && e.message.contains(words)
            }
            try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: bad, with: "http2MaxRequests: 10")
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    /// A spec that is not a mapping was read as an empty one ("nothing to check"): now an error at its line.
    @Test(arguments: [("networking.istio.io/v1beta1", "VirtualService"), ("networking.istio.io/v1beta1", "DestinationRule"),
                      ("gateway.networking.k8s.io/v1", "HTTPRoute")])
    func aSpecThatIsNotAMappingIsRefusedWithItsLine(_ apiVersion: String, _ kind: String) throws {
        let path = try writeTemporaryYAML("apiVersion: \(apiVersion)\nkind: \(kind)\nmetadata: {name: r}\nspec: 5\n")
        defer { removeTemporary(path) }
        #expect {
            try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.line == 4 && e.field == "spec" && e.message.contains("expected a mapping")
        }
    }

    @Test func weightsThatDoNotSumTo100AreRefusedWithTheLine() throws {
        let path = try writeTemporaryYAML("""
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: r}
            spec:
              http:
              - route:
                - destination: {host: reviews}
                  weight: 60
                - destination: {host: ratings}
                  weight: 30
            """)
        defer { removeTemporary(path) }
        #expect {
            try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.line == 6 && e.message.contains("sum to 90")
        }
    }

    @Test func aSubsetNoDestinationRuleDefinesIsAnError() throws {
        let path = try writeTemporaryYAML("""
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: r}
            spec:
              http:
              - route:
                - destination: {host: reviews, subset: v3}
            """)
        defer { removeTemporary(path) }
        #expect {
            try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
        } throws: { error in
            (error as? YAMLInputError)?.message.contains("subset 'v3'") == true
        }
    }

    @Test func plainHostsWithoutSubsetsAreDestinations() throws {
        let path = try writeTemporaryYAML("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: r}
            spec:
              http:
              - match:
                - uri: {prefix: /api/v2}
                route:
                - destination: {host: reviews-v2}
              - route:
                - destination: {host: reviews-v1}
                  weight: 100
            """)
        defer { removeTemporary(path) }
        let imported = try ManifestImporter.importRoutes(files: [path], recognizer: .workload, statistics: .init())
        #expect(imported.routes.count == 2)
        #expect(imported.routes[0].matchPath == "/api/v2")
        #expect(imported.routes[0].weights == ["reviews-v2": 100])
        #expect(imported.routes[1].weights == ["reviews-v1": 100])
    }

    @Test func malformedYAMLNamesTheFileAndLine() throws {
        let path = try writeTemporaryYAML("kind: VirtualService\nspec:\n  http: [\n")
        defer { removeTemporary(path) }
        #expect {
            try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.file == path && e.message.contains("not valid YAML")
        }
    }

    @Test func outlierDetectionFromIstioAndLinkerdWithNotesForWhatIsNotVerified() throws {
        let path = try writeTemporaryYAML("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: ratings}
            spec:
              host: ratings
              trafficPolicy:
                outlierDetection:
                  consecutive5xxErrors: 0
                  consecutiveGatewayErrors: 4
                  interval: 1s
                  baseEjectionTime: 2m
                  maxEjectionPercent: 34
                  minHealthPercent: 50
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: ratings
              annotations:
                balancer.linkerd.io/failure-accrual: consecutive
                balancer.linkerd.io/failure-accrual-consecutive-max-failures: "4"
                balancer.linkerd.io/failure-accrual-consecutive-min-penalty: 3s
            spec: {ports: [{port: 80}]}
            """)
        defer { removeTemporary(path) }
        let imported = try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
        #expect(imported.outlierDetections.count == 2)
        let istio = try #require(imported.outlierDetections.first)
        #expect(istio.consecutiveErrors == 4 && istio.counted == .gatewayErrors && istio.interval == 1 && istio.baseEjectionTime == 120)
        #expect(istio.maxEjectionPercent == 34 && istio.maxEjected(of: 3) == 1)
        #expect(imported.notes.contains { $0.contains("minHealthPercent") })
        let linkerd = try #require(imported.outlierDetections.last)
        #expect(linkerd.consecutiveErrors == 4 && linkerd.baseEjectionTime == 3 && linkerd.jitter == 0.5)
        #expect(linkerd.interval == 0 && linkerd.maxEjectionPercent == 100 && linkerd.source.contains("Service ratings"))
        #expect(!imported.notes.contains { $0.contains("Service ratings") }, "the Service was used, not ignored: \(imported.notes)")

        // A failure count that is not a number names the line.
        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "max-failures: \"4\"", with: "max-failures: many")
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
        } throws: { error in
            guard let e = error as? YAMLInputError else { return false }
            return e.line == 21 && e.message.contains("1-1000")
        }
    }

    /// Manifests with no routing resource say so, naming every kind that would have been one.
    @Test func manifestsWithoutARouteSaySoNamingEachRouteKind() throws {
        let imported = try importManifests("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews-pool}
            spec:
              host: reviews
              trafficPolicy: {connectionPool: {http: {http2MaxRequests: 10}}}
            """)
        #expect(imported.routes.isEmpty)
        #expect(imported.notes.contains { $0.hasPrefix("no VirtualService, HTTPRoute or GRPCRoute found in ") }, "\(imported.notes)")
    }
}
