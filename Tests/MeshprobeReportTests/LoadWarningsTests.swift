import MeshprobeLoad
import MeshprobeSpec
import Testing

@testable import MeshprobeReport

/// The warnings a load's summary carries about how it was set up.
@Suite struct LoadWarningsTests {
    @Test func aTargetWithoutAConnectionIsNamed() throws {
        var configuration = LoadConfiguration(targets: try ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b", "http://127.0.0.1:1/c"].map { try LoadTarget(parsing: $0) })
        configuration.plan.connections = 2
        let warnings = LoadReport.warnings(LoadResult(), configuration: configuration)
        #expect(warnings.contains { $0.hasPrefix("3 targets but 2 connections") && $0.contains("http://127.0.0.1:1/c got none") }, "\(warnings)")
        configuration.plan.connections = 3
        #expect(!LoadReport.warnings(LoadResult(), configuration: configuration).contains { $0.contains("got none") })
    }
}
