import MeshprobeIdentity
@testable import MeshprobeLoad
import Testing

/// When closes without an answer are dropped requests and when they are the target refusing.
@Suite struct TargetEvidenceTests {
    /// A port that never answers is taken as refusing after 20 drops in a row, across all its connections.
    @Test func beforeAnyAnswerTwentyInARowAreAnOutage() {
        var counts = TargetCounts()
        let outages = (1...21).map { _ in counts.connectionClosed(answers: 0, drops: 1) }
        #expect(outages.prefix(19).allSatisfy { !$0 })
        #expect(outages[19] && outages[20])
    }

    /// A server that drops half its connections' first requests: streaks of chance length are drops; one that the
    /// observed share makes implausible (one in a million) is an outage.
    @Test func withAnswersTheStreakIsJudgedByTheObservedShare() {
        var counts = TargetCounts()
        for _ in 0..<500 {
            let outage = counts.connectionClosed(answers: 0, drops: 1)
            #expect(!outage)
            counts.connectionAnswered()
        }
        // 500 answered, 500 dropped before the streak: the share's upper bound is 0.549, and 0.549^k < 1e-6 from k = 24.
        var streak: [Bool] = []
        for _ in 0..<30 { streak.append(counts.connectionClosed(answers: 0, drops: 1)) }
        #expect(streak.firstIndex(of: true).map { $0 + 1 } == 24, "\(streak)")
        // An answer ends the streak.
        counts.connectionAnswered()
        let afterAnswer = counts.connectionClosed(answers: 0, drops: 1)
        #expect(!afterAnswer)
    }

    /// A backend that goes away after a long healthy run: a few drops in a row are enough.
    @Test func afterManyAnswersAFewDropsAreAnOutage() {
        var counts = TargetCounts()
        for _ in 0..<1000 { counts.connectionAnswered() }
        let streak = (1...3).map { _ in counts.connectionClosed(answers: 0, drops: 1) }
        #expect(streak == [false, false, true])
    }

    /// Keep-alive connections answer many requests each: their answers, counted when they close, are the evidence
    /// (two connections that answered 171 requests each, then a backend gone behind an L4 proxy).
    @Test func aKeepAliveConnectionsAnswersCountWhenItCloses() {
        var counts = TargetCounts()
        for _ in 0..<2 {
            counts.connectionAnswered()
            let outage = counts.connectionClosed(answers: 171, drops: 1)
            #expect(!outage)
        }
        #expect(counts.answered == 342 && counts.dropped == 2)
        let streak = (1...6).map { _ in counts.connectionClosed(answers: 0, drops: 1) }
        #expect(streak.firstIndex(of: true).map { $0 + 1 } ?? 99 <= 6, "\(streak)")
        #expect(!streak[0] && !streak[1])
    }

    /// A server dropping 90% of first requests, once it has answered, keeps being read as dropping them over a long
    /// run (before its first answer, 20 drops in a row happen 12% of the time: such a server may be given up then).
    @Test(arguments: [1, 2, 3] as [UInt64]) func aNinetyPercentDropperIsNotAnOutageByChance(seed: UInt64) {
        var counts = TargetCounts()
        counts.connectionAnswered()
        var outages = 0
        var random = SplitMix64(seed: seed)
        for _ in 0..<20_000 {
            if Int.random(in: 0..<10, using: &random) == 0 {
                counts.connectionAnswered()
            } else if counts.connectionClosed(answers: 0, drops: 1) {
                outages += 1
            }
        }
        // 131 in a row at 90% is about one in a million per position: over 18,000 drops this essentially never happens.
        #expect(outages == 0, "\(counts)")
    }
}

/// The open model's given-up arrivals say which wait it was: busy streams are not only a rate too high.
@Suite struct NotSentExplanationTests {
    @Test func busyStreamsAndNoConnectionAreToldApart() {
        let busy = LoadWorker.notSentExplanation(timeout: 0.5, reason: .streamsBusy)
        #expect(busy.hasPrefix("waited more than 0.5s for a free stream (streams_busy): every stream was busy"), "\(busy)")
        #expect(busy.contains("the target slowed down or held them"))
        #expect(LoadWorker.notSentExplanation(timeout: 2, reason: .noConnection).hasSuffix("(no_connection): no connection was ready to send them on"))
    }
}

/// One proxy's unstamped replies are one class, whichever came before the run's first stamped answer.
@Suite struct UnstampedReplyClassTests {
    @Test func repliesCountedUnknownBeforeTheFirstStampJoinTheProxys() {
        var r = LoadResult()
        let proxy = FailureClass(origin: .proxy, reason: FailureClass.Reason.unrecognised)
        r.recordFailure(FailureClass(origin: .unknown, reason: "503"), latencyMicros: 100)
        r.recordFailure(FailureClass(origin: .unknown, reason: "503"), latencyMicros: 200)
        for _ in 0..<5 { r.recordFailure(proxy, latencyMicros: 300) }
        r.recordFailure(FailureClass(origin: .unknown, reason: "UNAVAILABLE"), latencyMicros: 300)
        var early = SeriesLabels(sourceWorkload: "meshprobe", destinationService: "a:1", responseCode: 503, failureClass: "unknown:503")
        var stats = SeriesStats()
        stats.requests = 2
        r.metrics.series[early] = stats
        early.failureClass = "proxy:unrecognised"
        stats.requests = 5
        r.metrics.series[early] = stats
        var unstampedOnly = r
        unstampedOnly.reclassifyUnstampedReplies()
        #expect(unstampedOnly.failedResponses.count == 3, "without a stamp seen, nothing moves")
        r.sawStamps = true
        r.reclassifyUnstampedReplies()
        #expect(r.failedResponses[proxy]?.count == 7 && r.failedResponses[proxy]?.latency.totalCount == 7)
        #expect(r.failedResponses.keys.filter { $0.origin == .unknown }.map(\.reason) == ["UNAVAILABLE"])
        #expect(r.metrics.series.count == 1 && r.metrics.series.values.first?.requests == 7)
        #expect(r.metrics.series.keys.first?.failureClass == "proxy:unrecognised")
    }
}
