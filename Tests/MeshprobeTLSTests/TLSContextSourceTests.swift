import Foundation
import MeshprobeTLS
import MeshprobeTestSupport
import Testing

/// A rotating source and the sources derived from it (the control APIs' client, the shards' channel): a rotation
/// reaches them, and one their transform refuses keeps their context.
@Suite struct TLSContextSourceTests {
    @Test func derivedSourcesFollowRotationsAndKeepTheirContextWhenTheTransformRefuses() throws {
        let pki = try LabPKIFixture()
        let first = try pki.clientTLS(try pki.svid("first", uris: [pki.id("first")]), expect: nil)
        let second = try pki.clientTLS(try pki.svid("second", uris: [pki.id("second")]), expect: nil)
        let third = try pki.clientTLS(try pki.svid("third", uris: [pki.id("third")]), expect: nil)
        let source = TLSContextSource(initial: first, source: "workload-api")
        struct Refused: Error {}
        // As the control APIs' client is made: the same SVID, without the load's peer check and ALPN.
        let derived = try source.derived(source: "control") { context in
            guard context.localIdentity?.description != pki.id("second") else { throw Refused() }
            var c = context.configuration
            c.applicationProtocols = ["http/1.1"]
            return try TLSContext(configuration: c)
        }
        #expect(derived.current.localIdentity?.description == pki.id("first"))
        #expect(derived.current.configuration.applicationProtocols == ["http/1.1"])

        source.rotate(to: second)
        #expect(source.current.localIdentity?.description == pki.id("second"))
        #expect(derived.current.localIdentity?.description == pki.id("first"), "a refused rotation keeps the derived context")
        #expect(derived.rotations.rejected == 1 && derived.rotations.count == 0)

        let before = source.rotations
        source.rotate(to: third)
        source.interrupted("Unavailable: the agent is not ready")
        // One run's share of the source (a verification's route): what came after its start.
        let share = source.rotations.since(before)
        #expect(share.count == 1 && share.times.count == 1 && share.interruptions == 1 && share.lastInterruption != nil)
        #expect(before.since(before).count == 0 && before.since(before).lastInterruption == nil)
        // A route's phases, one after another: their shares add up to the source's over both.
        let sum = before.since(TLSContextSource.Rotations(source: "workload-api")).adding(share)
        #expect(sum.count == source.rotations.count && sum.interruptions == source.rotations.interruptions && sum.times == source.rotations.times)
        #expect(derived.current.localIdentity?.description == pki.id("third"))
        #expect(derived.rotations.count == 1)
        #expect(source.rotations.count == 2 && source.rotations.rejected == 0)
    }
}
