import Foundation
import MeshprobeVerify
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
                  http: {http2MaxRequests: 10, http1MaxPendingRequests: 1, maxRetries: 3}
                outlierDetection: {consecutive5xxErrors: 5}
            """)
        defer { removeTemporary(path) }
        let imported = try ManifestImporter.importRoutes(files: [path], recognizer: .version, statistics: .init())
        let breaker = try #require(imported.circuitBreakers.first)
        #expect(breaker.maxRequests == 10 && breaker.maxPending == 1 && breaker.admitted == 11)
        #expect(breaker.source.hasSuffix(":8 DestinationRule reviews-pool"), "\(breaker.source)")
        #expect(imported.notes.contains { $0.contains("outlierDetection is not verified yet") })
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
}
