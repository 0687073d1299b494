import MeshprobeIdentity
import MeshprobeSpec
import Testing
@testable import MeshprobeLoad

/// Responses per second by the identity that answered: counted by the worker's identity index, labelled when the
/// seconds leave the worker, added up by identity over workers.
@Suite struct IdentityTimelineTests {
    let v1 = WorkloadIdentity(identity: "spiffe://lab/ns/a/sa/reviews", workload: "reviews", version: "v1")
    let v2 = WorkloadIdentity(identity: "spiffe://lab/ns/a/sa/reviews", workload: "reviews", version: "v2")

    /// Records `count` responses of `identity` in `second` on a connection whose last identity is `slot`.
    func record(_ result: inout LoadResult, _ identity: WorkloadIdentity, second: Int, count: Int = 1, status: Int = 200,
                slot: inout LoadResult.IdentitySlot?) {
        for _ in 0..<count {
            result.recordResponse(status: status, latencyMicros: 500, serviceMicros: 400, identity: identity, second: second, slot: &slot)
        }
    }

    @Test func eachSecondCountsItsResponsesByIdentity() {
        var result = LoadResult()
        var a: LoadResult.IdentitySlot?, b: LoadResult.IdentitySlot?
        // Two connections: one always v1 (its cached slot), one alternating, so both the cached and the looked-up
        // identity paths count.
        record(&result, v1, second: 0, count: 3, slot: &a)
        record(&result, v2, second: 0, count: 2, slot: &b)
        record(&result, v1, second: 0, slot: &b)
        record(&result, v2, second: 1, count: 4, status: 503, slot: &b)
        record(&result, v1, second: 1, slot: &a)
        let seconds = result.takeOpenSeconds(before: 2)
        #expect(seconds.map(\.second) == [0, 1])
        #expect(seconds[0].identities == [v1: 4, v2: 2])
        #expect(seconds[1].identities == [v1: 1, v2: 4])
        // Failed responses count too: the identity answered them.
        #expect(seconds.allSatisfy { $0.identities.values.reduce(0, +) == $0.responses })
        #expect(seconds.allSatisfy { $0.responsesByIdentityIndex.isEmpty }, "labelled when taken")
    }

    @Test func errorsWithoutAResponseAreNotAnIdentitysResponses() {
        var result = LoadResult()
        var slot: LoadResult.IdentitySlot?
        record(&result, v1, second: 0, count: 2, slot: &slot)
        result.recordError(.streamReset, identity: v1, second: 0)
        let second = result.takeOpenSeconds(before: nil)[0]
        #expect(second.failed == 1 && second.responses == 2)
        #expect(second.identities == [v1: 2])
    }

    /// Two workers number the same identities the other way round; merged, the counts are by identity.
    @Test func workersMergeByIdentityNotByTheirIndices() {
        var first = LoadResult(), second = LoadResult()
        var s1: LoadResult.IdentitySlot?, s2: LoadResult.IdentitySlot?
        record(&first, v1, second: 0, count: 5, slot: &s1)
        record(&first, v2, second: 0, count: 1, slot: &s1)
        record(&second, v2, second: 0, count: 7, slot: &s2)
        record(&second, v1, second: 0, count: 2, slot: &s2)
        record(&second, v2, second: 3, count: 3, slot: &s2)
        let context = SeriesContext(configuration: LoadConfiguration(targets: [try! LoadTarget(parsing: "http://127.0.0.1:1/")]))
        first.labelSeries(context)
        second.labelSeries(context)
        var merged = LoadResult()
        merged.merge(first)
        merged.merge(second)
        merged.finishTimeline()
        #expect(merged.timeline.map(\.second) == [0, 1, 2, 3])
        #expect(merged.timeline[0].identities == [v1: 7, v2: 8])
        #expect(merged.timeline[1].identities.isEmpty && merged.timeline[2].identities.isEmpty)
        #expect(merged.timeline[3].identities == [v2: 3])
        // A finished second keeps them, and gives them back as a bucket.
        #expect(merged.timeline[0].bucket.identities == [v1: 7, v2: 8])
        #expect(TimelinePoint(merged.timeline[0].bucket) == merged.timeline[0])
    }

    /// A result counted in place (never handed over by a worker) is labelled as it merges.
    @Test func anUnlabelledResultIsLabelledAsItMerges() {
        var counted = LoadResult()
        var slot: LoadResult.IdentitySlot?
        record(&counted, v2, second: 1, count: 3, slot: &slot)
        var merged = LoadResult()
        merged.merge(counted)
        merged.finishTimeline()
        #expect(merged.timeline.last?.identities == [v2: 3])
    }

    /// A hundred identities, one response each: the worker's array grows to every index.
    @Test func manyIdentitiesEachKeepTheirCount() {
        var result = LoadResult()
        for i in 0..<100 {
            var slot: LoadResult.IdentitySlot?
            record(&result, WorkloadIdentity(workload: "w", version: "v\(i)"), second: 0, count: i % 3 + 1, slot: &slot)
        }
        let second = result.takeOpenSeconds(before: nil)[0]
        #expect(second.identities.count == 100)
        #expect(second.identities[WorkloadIdentity(workload: "w", version: "v41")] == 3)
        #expect(second.identities.values.reduce(0, +) == second.responses)
    }
}
