import MeshprobeIdentity
import MeshprobeSpec
import Testing

/// `--threshold` and a scenario's `thresholds`: one parse, one message per mistake.
@Suite struct LoadThresholdTests {
    @Test func metricsComparisonsAndLimits() throws {
        let p95 = try LoadThreshold(parsing: "p95<250ms")
        #expect(p95.metric == .percentile(95) && p95.comparison == .below && p95.limit == 0.25 && p95.selector == nil)
        #expect(try LoadThreshold(parsing: " p99.9 <= 1s ").text == "p99.9<=1s")
        #expect(try LoadThreshold(parsing: "p999<1s").metric == .percentile(99.9))
        #expect(try LoadThreshold(parsing: "p9999<1s").metric == .percentile(99.99))
        #expect(try LoadThreshold(parsing: "p50<20ms").metric == .percentile(50))
        #expect(try LoadThreshold(parsing: "med<20ms").metric == .percentile(50))
        #expect(try LoadThreshold(parsing: "avg<20ms").metric == .mean)
        #expect(try LoadThreshold(parsing: "max<2s").metric == .max)
        let errors = try LoadThreshold(parsing: "error_rate<1%")
        #expect(errors.metric == .errorRate && errors.limit == 0.01)
        #expect(try LoadThreshold(parsing: "error_rate<=0.05").limit == 0.05)
        let rps = try LoadThreshold(parsing: "rps>=900")
        #expect(rps.metric == .rps && rps.comparison == .atLeast && rps.limit == 900)
        #expect(try LoadThreshold(parsing: "rps>10").comparison == .above)
    }

    @Test func aSelectorNamesOneIdentity() throws {
        let v2 = try LoadThreshold(parsing: "version=v2:p99<300ms")
        #expect(v2.selector == .init(field: .version, value: "v2") && v2.metric == .percentile(99))
        // A SPIFFE ID has colons of its own: the selector ends at the last one.
        let id = try LoadThreshold(parsing: "identity=spiffe://example.org/ns/a/sa/reviews:error_rate<0.01")
        #expect(id.selector == .init(field: .identity, value: "spiffe://example.org/ns/a/sa/reviews"))
        #expect(try LoadThreshold(parsing: "cluster=east:rps>=1").selector?.field == .cluster)
        #expect(try LoadThreshold(parsing: "workload=reviews:mean<1s").selector?.field == .workload)
    }

    @Test func mistakesAreNamed() {
        #expect(throws: InputValueError("'250' has no unit: write 250s or 250ms (units: us, ms, s, m or h)")) {
            try LoadThreshold(parsing: "p95<250")
        }
        #expect(throws: InputValueError("'p100<1s': unknown metric 'p100': expected p50, p95, p99, p99.9 (any percentile), mean, max, error_rate or rps")) {
            try LoadThreshold(parsing: "p100<1s")
        }
        #expect(throws: InputValueError("'latency<1s': unknown metric 'latency': expected p50, p95, p99, p99.9 (any percentile), mean, max, error_rate or rps")) {
            try LoadThreshold(parsing: "latency<1s")
        }
        #expect(throws: InputValueError("'p95': expected METRIC<LIMIT such as p95<250ms, error_rate<0.01 or rps>=900")) {
            try LoadThreshold(parsing: "p95")
        }
        #expect(throws: InputValueError("'p95==1s': compare with <, <=, > or >= (not '==')")) { try LoadThreshold(parsing: "p95==1s") }
        #expect(throws: InputValueError("'p95<': no limit after '<'")) { try LoadThreshold(parsing: "p95<") }
        #expect(throws: InputValueError("'error_rate<5': an error rate is a fraction from 0 to 1 (0.01) or a percentage (1%)")) {
            try LoadThreshold(parsing: "error_rate<5")
        }
        #expect(throws: InputValueError("'rps>fast': expected requests per second, a number such as 900")) { try LoadThreshold(parsing: "rps>fast") }
        #expect(throws: InputValueError("'pod=x:p99<1s': 'pod' is not an identity field: expected version, workload, cluster or identity (version=v2:p99<300ms)")) {
            try LoadThreshold(parsing: "pod=x:p99<1s")
        }
        // A selector without its colon (a trial's finding: the message named '=v').
        #expect(throws: InputValueError("'version=v1 p99<1s': a selector ends with a colon: version=VALUE:METRIC OP LIMIT (version=v2:p99<300ms)")) {
            try LoadThreshold(parsing: "version=v1 p99<1s")
        }
    }

    @Test func percentileNames() {
        #expect(LoadThreshold.percentile("p95") == 95)
        #expect(LoadThreshold.percentile("p99.5") == 99.5)
        #expect(LoadThreshold.percentile("p999") == 99.9)
        for name in ["p", "p0", "p100", "p500", "p.5", "q95", "p9x"] { #expect(LoadThreshold.percentile(name) == nil, "\(name)") }
    }
}
