import Foundation
import MeshprobeHistogram
import MeshprobeLoad
import MeshprobeStatistics

/// Merges `verify` results of the same policy (several runs, or shards): the statistical verdicts are decided again
/// on the merged samples, never averaged.
///
/// - split: counts per destination add up, and the sequential test judges the totals (`SplitTest.evaluate(counts:)`);
///   a FAIL is withheld by the rules `verify` applies (a failing destination, client-keyed routing), on the totals;
/// - mTLS and clusters: the callers and clusters seen add up, and the rule is applied to the totals;
/// - SLOs: from the merged lossless load results (success counts and latency histograms);
/// - the resilience procedures (circuit breakers, outlier detection, retries): each run's own verdicts, kept with the
///   file they came from (a procedure's evidence is not a sample that adds up).
public enum VerifyMerge {
    public typealias MergeError = ResultMerger.MergeError

    public static func read(_ path: String) throws(MergeError) -> VerifyReport {
        try read(data: try ResultMerger.contents(path), name: path)
    }

    /// Reads one verify result from `data` (a file's bytes, or a shard's upload); errors name it `path`.
    public static func read(data: Data, name path: String) throws(MergeError) -> VerifyReport {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw MergeError("\(path): not a JSON object (truncated or corrupted?)")
        }
        guard let schema = root["schema"] as? String, schema == VerifyReport.schemaVersion else {
            throw MergeError("\(path): schema is '\(root["schema"] as? String ?? "missing")'; merge reads \(VerifyReport.schemaVersion) verify results")
        }
        let report = try ResultMerger.decoding(path) { try JSONDecoder().decode(VerifyReport.self, from: data) }
        guard report.policySHA256 != nil, let results = report.results else {
            throw MergeError("\(path): no policy_sha256 or results: written by an older meshprobe")
        }
        // Each route's load merges exactly as a load result does: the same checks.
        for (i, result) in results.enumerated() {
            try ResultMerger.checkCounts(result, name: path, field: "results[\(i)].")
            try ResultMerger.checkHistograms(result, name: path, field: "results[\(i)].")
        }
        return report
    }

    public static func merge(_ files: [(file: String, report: VerifyReport)], commandLine: [String]) throws(MergeError) -> VerifyReport {
        guard let first = files.first else { throw MergeError("nothing to merge") }
        for (file, report) in files.dropFirst() where report.policySHA256 != first.report.policySHA256 {
            throw MergeError("\(file): a different policy than \(first.file) (SHA-256 differs): only runs of one policy merge")
        }
        // A result per route, then one for the SLOs' own load when a run needed it (runs of one policy differ there).
        let routes = first.report.verdicts.filter { $0.kind == "split" }.count
        for (file, report) in files {
            let count = report.results?.count ?? 0
            guard report.verdicts.filter({ $0.kind == "split" }).count == routes, count == routes || count == routes + 1 else {
                throw MergeError("\(file): \(report.verdicts.filter { $0.kind == "split" }.count) routes and \(count) loads, \(first.file) has \(routes) routes")
            }
        }
        // Route i's loads from every file, merged exactly; the SLO loads together.
        var results: [LoadReport] = []
        for i in 0..<routes {
            results.append(try ResultMerger.merge(files.map { ($0.file, $0.report.results![i]) }, commandLine: commandLine))
        }
        let objectives = files.compactMap { file in (file.report.results?.count ?? 0) > routes ? (file.file, file.report.results![routes]) : nil }
        if !objectives.isEmpty { results.append(try ResultMerger.merge(objectives, commandLine: commandLine)) }
        var merged = VerifyReport(file: first.report.policy)
        merged.policySHA256 = first.report.policySHA256
        merged.results = results
        merged.mergedFrom = files.map(\.file)
        var done = Set<String>()
        for verdict in first.report.verdicts {
            let key = verdict.kind + "\u{0}" + verdict.name
            guard !done.contains(key) else { continue }
            done.insert(key)
            let same = files.flatMap { file in file.report.verdicts.filter { $0.kind == verdict.kind && $0.name == verdict.name }.map { (file.file, $0) } }
            switch verdict.kind {
            case "split": merged.appendVerdict(try split(same.map(\.1)))
            case "mtls", "clusters": merged.appendVerdict(seen(same.map(\.1)))
            case "slo": merged.appendVerdict(slo(same.map(\.1), results: results))
            default:
                for (file, v) in same {
                    var kept = v
                    kept.name += " [\(file)]"
                    merged.appendVerdict(kept)
                }
            }
        }
        // Verdicts only later files have (a procedure one run skipped): kept as they are, with their file.
        for (file, report) in files.dropFirst() {
            for v in report.verdicts where !done.contains(v.kind + "\u{0}" + v.name) {
                var kept = v
                kept.name += " [\(file)]"
                merged.appendVerdict(kept)
            }
        }
        return merged
    }

    /// One route's split on the merged counts.
    public static func split(_ verdicts: [VerifyReport.Verdict]) throws(MergeError) -> VerifyReport.Verdict {
        var v = verdicts[0]
        var counts: [String: Int] = [:]
        for other in verdicts { counts.merge(other.evidence.counts, uniquingKeysWith: +) }
        let total = counts.values.reduce(0, +)
        let e = v.evidence
        let truncated = verdicts.contains { $0.evidence.truncated }
        let configuration = SplitTestConfiguration(tolerance: e.tolerance, falseFailRate: e.falseFailRate, missRate: e.missRate,
                                                   maxSamples: truncated ? max(1, total) : Int.max / 4)
        // Connection-unit verdicts carry each one-sided test's log evidence: independent runs multiply it.
        let connectionUnit = verdicts.allSatisfy { $0.evidence.sampling?.unit == "connection" && $0.evidence.sampling?.tests != nil }
        if verdicts.contains(where: { $0.evidence.sampling?.unit == "connection" }) && !connectionUnit {
            throw MergeError("split '\(v.name)': some results sampled by connection and some by response (different routing settings)")
        }
        let connections = verdicts.reduce(0) { $0 + ($1.evidence.sampling?.connections ?? 0) }
        let verdict: SplitTest.Verdict?
        do {
            if connectionUnit {
                verdict = try ConnectionSplitTest.evaluate(verdicts.flatMap { $0.evidence.sampling?.tests ?? [] }, counts: counts,
                                                           connections: connections, weights: e.declared, configuration: configuration)
            } else {
                verdict = try SplitTest.evaluate(counts: counts, weights: e.declared, configuration: configuration)
            }
        } catch {
            throw MergeError("split '\(v.name)': \(error.description)")
        }
        v.evidence.counts = counts
        v.evidence.requests = total
        v.evidence.observed = counts.mapValues { total > 0 ? (Double($0) / Double(total) * 10000).rounded() / 10000 : 0 }
        // Several runs' counts add up, but their trajectories were not one sequence of samples.
        if verdicts.count > 1 { v.evidence.trajectory = nil }
        v.evidence.truncated = verdict?.evidence.truncated ?? false
        v.evidence.unsuccessfulResponses = verdicts.reduce(0) { $0 + $1.evidence.unsuccessfulResponses }
        var unsuccessful: [String: Int] = [:]
        for other in verdicts { unsuccessful.merge(other.evidence.unsuccessfulByDestination ?? [:], uniquingKeysWith: +) }
        v.evidence.unsuccessfulByDestination = unsuccessful.isEmpty ? nil : unsuccessful
        v.evidence.connections = verdicts.reduce(0) { $0 + ($1.evidence.connections ?? 0) }
        v.evidence.propagation = nil
        if connectionUnit, var sampling = v.evidence.sampling {
            sampling.connections = connections
            sampling.tests = verdict?.evidence.tests
            sampling.effectiveSamples = nil
            sampling.correlation = nil
            sampling.expectedMixedConnections = nil
            sampling.pairedConnections = verdicts.reduce(0) { $0 + ($1.evidence.sampling?.pairedConnections ?? 0) }
            sampling.mixedConnections = verdicts.reduce(0) { $0 + ($1.evidence.sampling?.mixedConnections ?? 0) }
            sampling.assumption = "unit: the connection; \(verdicts.count) independent runs merged, \(connections) connections: each one-sided test's evidence is the product of the runs'"
            v.evidence.sampling = sampling
            v.evidence.test = "sequential test on connections, judged on the merged runs (product of each test's evidence)"
        } else {
            v.evidence.test = "sequential probability ratio tests per destination, judged on the merged counts (final likelihood ratios)"
        }
        v.passed = verdict?.passed == true
        v.decided = verdict != nil
        if case .fail(let why, _)? = verdict { v.reason = why } else { v.reason = nil }
        if verdict == nil { v.reason = "undecided on the merged \(total) responses: no boundary crossed" }
        // The rules that withhold a FAIL of `verify`, in its order, on the merged counts.
        if case .fail? = verdict,
           let failing = VerifyReport.failingDestinationReason(counts: counts, unsuccessful: unsuccessful, declared: e.declared, tolerance: e.tolerance) {
            v.decided = false
            v.reason = failing
        } else if case .fail? = verdict, connectionUnit,
           let keyed = VerifyReport.clientKeyedReason(counts: counts, declared: e.declared, routing: e.sampling?.routing, connections: connections) {
            v.decided = false
            v.reason = keyed
        }
        return v
    }

    /// mTLS (every response from the expected caller) and clusters (reach >= 1, avoid = 0) on the merged counts.
    public static func seen(_ verdicts: [VerifyReport.Verdict]) -> VerifyReport.Verdict {
        var v = verdicts[0]
        var counts: [String: Int] = [:]
        for other in verdicts { counts.merge(other.evidence.counts, uniquingKeysWith: +) }
        let total = counts.values.reduce(0, +)
        v.evidence.counts = counts
        v.evidence.requests = total
        v.evidence.observed = counts.mapValues { total > 0 ? Double($0) / Double(total) : 0 }
        var problems: [String] = []
        if v.kind == "mtls" {
            let expected = v.evidence.declared.first { $0.value == 1 }?.key ?? ""
            let others = total - counts[expected, default: 0]
            if total == 0 || others > 0 { problems.append("\(others) of \(total) responses came from a caller other than \(expected)") }
        } else {
            let missing = v.evidence.declared.filter { $0.value == 1 && counts[$0.key, default: 0] == 0 }.keys.sorted()
            if !missing.isEmpty { problems.append("no response from \(missing.joined(separator: ", "))") }
            let reached = v.evidence.declared.filter { $0.value == 0 && counts[$0.key, default: 0] > 0 }.keys.sorted()
            if !reached.isEmpty { problems.append(reached.map { "\(counts[$0, default: 0]) responses from \($0)" }.joined(separator: ", ") + " (declared: nothing)") }
        }
        v.passed = problems.isEmpty
        v.decided = true
        v.reason = problems.isEmpty ? nil : problems.joined(separator: "; ")
        return v
    }

    /// An SLO on merged runs: with the runs' bound evidence (each independent run's test martingales multiply, and
    /// Markov's inequality keeps the stated rates for this one look), else the point estimate of older results.
    public static func slo(_ verdicts: [VerifyReport.Verdict], results: [LoadReport]) -> VerifyReport.Verdict {
        var v = verdicts[0]
        let evidences = verdicts.map(\.evidence.observed)
        if evidences.allSatisfy({ $0["log_evidence_pass"] != nil && $0["log_evidence_fail"] != nil }) {
            let pass = evidences.reduce(0) { $0 + ($1["log_evidence_pass"] ?? 0) }
            let fail = evidences.reduce(0) { $0 + ($1["log_evidence_fail"] ?? 0) }
            let samples = verdicts.reduce(0) { $0 + $1.evidence.requests }
            let share = samples > 0 ? verdicts.reduce(0.0) { $0 + ($1.evidence.observed["observed"] ?? 0) * Double($1.evidence.requests) } / Double(samples) : 0
            let (alpha, beta) = (v.evidence.falseFailRate, v.evidence.missRate)
            v.decided = alpha > 0 && beta > 0 && (fail >= log(1 / alpha) || pass >= log(1 / beta))
            v.passed = v.decided && fail < log(1 / alpha)
            v.evidence.requests = samples
            v.evidence.observed = ["observed": share, "log_evidence_pass": pass, "log_evidence_fail": fail]
            v.evidence.test = "sequential bound on the merged runs (product of each run's evidence)"
            v.reason = v.passed ? nil : String(format: "%@%.4f over %d merged samples, objective %g", v.decided ? "" : "undecided: ", share, samples,
                                                 v.evidence.declared["percentile"].map { $0 / 100 } ?? (v.evidence.declared["limit"] ?? 0))
            return v
        }
        let limit = v.evidence.declared["limit"] ?? 0
        var observed = 0.0
        var responses = 0
        if let percentile = v.evidence.declared["percentile"] {
            var all: LatencyHistogram?
            for r in results {
                guard let h = try? HistogramCodec.decode(r.histograms.latency) else { continue }
                if all == nil { all = h } else { all!.add(h) }
                responses += r.summary.responses
            }
            observed = all.map { Double($0.highestEquivalentValue(atPercentile: percentile)) / 1e6 } ?? 0
            v.passed = observed <= limit
            v.reason = v.passed ? nil : String(format: "p%g was %.1f ms over %d merged responses", percentile, observed * 1000, responses)
        } else {
            let succeeded = results.reduce(0) { $0 + $1.summary.succeeded }
            let failed = results.reduce(0) { $0 + $1.summary.failed }
            responses = succeeded + failed
            observed = Double(succeeded) / Double(max(1, responses))
            v.passed = observed >= limit
            v.reason = v.passed ? nil : String(format: "%.4f of %d merged requests succeeded", observed, responses)
        }
        v.evidence.observed = ["observed": observed]
        v.evidence.requests = responses
        v.evidence.test = "point estimate over every request of the merged runs"
        v.decided = true
        return v
    }
}
