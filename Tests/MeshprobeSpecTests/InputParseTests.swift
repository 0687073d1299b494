import MeshprobeIdentity
import MeshprobeSpec
import Testing

/// Every input type's one parse: what it accepts, and the one message for what it refuses (flags and files show it
/// after the flag or `FILE:LINE:COLUMN: field`).
@Suite struct InputParseTests {
    @Test func rateIsZeroOrBetweenItsBounds() throws {
        #expect(try Rate(parsing: "200").perSecond == 200)
        #expect(try Rate(parsing: "0").perSecond == 0)
        #expect(try Rate(parsing: "0.001").perSecond == 0.001)
        #expect(try Rate(parsing: "1e7").perSecond == 10_000_000)
        for text in ["-1", "0.0001", "1e8", "inf", "nan", "fast", ""] {
            #expect(throws: InputValueError("'\(text)': expected requests per second: 0, or 0.001 to 10000000")) { try Rate(parsing: text) }
        }
    }

    @Test func churnIsReuseRequestOrACount() throws {
        #expect(try ConnectionChurn(parsing: "reuse") == .reuse)
        #expect(try ConnectionChurn(parsing: "request") == .perRequest)
        #expect(try ConnectionChurn(parsing: "50") == .every(50))
        #expect(ConnectionChurn.every(50).spelling == "50" && ConnectionChurn.perRequest.spelling == "request")
        for text in ["0", "-3", "always", "1.5", ""] {
            #expect(throws: InputValueError("'\(text)': expected reuse, request, or a number of requests per connection (1 or more)")) {
                try ConnectionChurn(parsing: text)
            }
        }
    }

    @Test func stageIsDurationTargetAndMaybeStep() throws {
        #expect(try LoadStage(parsing: "30s:500") == LoadStage(duration: 30, target: 500, ramp: true))
        #expect(try LoadStage(parsing: "1m:0:step") == LoadStage(duration: 60, target: 0, ramp: false))
        for text in ["30s", "30s:5:linear", "30s:5:step:x", ""] {
            #expect(throws: InputValueError("'\(text)': expected DURATION:TARGET or DURATION:TARGET:step, e.g. 30s:500")) {
                try LoadStage(parsing: text)
            }
        }
        #expect(throws: InputValueError("'10' has no unit: write 10s or 10ms (units: us, ms, s, m or h)")) { try LoadStage(parsing: "10:5") }
        #expect(throws: InputValueError("'0s': expected a positive duration such as 30s, 500ms or 2m")) { try LoadStage(parsing: "0s:5") }
        for target in ["-1", "x", "inf"] {
            #expect(throws: InputValueError("the target '\(target)' must be a number, zero or more")) { try LoadStage(parsing: "1s:\(target)") }
        }
        #expect(try LoadStage.ramp(parsing: "linear") && !(try LoadStage.ramp(parsing: "step")))
        #expect(throws: InputValueError("'ramp': expected linear or step")) { try LoadStage.ramp(parsing: "ramp") }
    }

    @Test func httpVersionIsAutoTwoOrOnePointOne() throws {
        #expect(try HTTPVersionPreference(parsing: "auto") == .auto)
        #expect(try HTTPVersionPreference(parsing: "2") == .http2)
        #expect(try HTTPVersionPreference(parsing: "1.1") == .http1)
        for version in HTTPVersionPreference.allCases { #expect(try HTTPVersionPreference(parsing: version.spelling) == version) }
        for text in ["http2", "h2", "1", "3", ""] {
            #expect(throws: InputValueError("'\(text)': expected auto, 2 or 1.1")) { try HTTPVersionPreference(parsing: text) }
        }
    }

    @Test func arrivalsAreUniformOrPoisson() throws {
        #expect(try ArrivalProcess(parsing: "uniform") == .uniform)
        #expect(try ArrivalProcess(parsing: "poisson") == .poisson)
        #expect(throws: InputValueError("'Poisson': expected uniform or poisson")) { try ArrivalProcess(parsing: "Poisson") }
    }

    @Test func guardsAndTheirAction() throws {
        #expect(try LoadGuard.errorRate(parsing: "0.2") == .errorRate(0.2))
        for text in ["0", "1", "1.5", "-0.1", "nan", "x"] {
            #expect(throws: InputValueError("'\(text)': expected a fraction between 0 and 1, e.g. 0.2")) { try LoadGuard.errorRate(parsing: text) }
        }
        #expect(try LoadGuard.p99(parsing: "500ms") == .p99(0.5))
        #expect(throws: InputValueError("'500' has no unit: write 500s or 500ms (units: us, ms, s, m or h)")) { try LoadGuard.p99(parsing: "500") }
        #expect(try GuardAction(parsing: "stop") == .stop)
        #expect(try GuardAction(parsing: "hold") == .hold)
        #expect(throws: InputValueError("'pause': expected stop or hold")) { try GuardAction(parsing: "pause") }
    }

    @Test func trustBundleIsATrustDomainAndAFile() throws {
        #expect(try TrustBundleSource(parsing: "east.example=/b/east=1.pem") == TrustBundleSource(trustDomain: "east.example", file: "/b/east=1.pem"))
        for text in ["east.example", "east.example=", ""] {
            #expect(throws: InputValueError("'\(text)': expected TRUST_DOMAIN=FILE")) { try TrustBundleSource(parsing: text) }
        }
        #expect(throws: InputValueError("'' is not a trust domain: the trust domain is empty")) { try TrustBundleSource(parsing: "=/b.pem") }
        #expect(throws: InputValueError.self) { try TrustBundleSource(parsing: "East.Example=/b.pem") }
    }

    @Test func coalesceWindowIsOffOrAtMost100ms() throws {
        #expect(try CoalesceWindow.seconds(parsing: "off") == 0)
        #expect(try CoalesceWindow.seconds(parsing: "0") == 0)
        #expect(try CoalesceWindow.seconds(parsing: "250us") == 0.00025)
        #expect(try CoalesceWindow.seconds(parsing: "100ms") == 0.1)
        #expect(throws: InputValueError("'150ms': at most 100ms (it delays requests by up to this much); 0 turns it off")) {
            try CoalesceWindow.seconds(parsing: "150ms")
        }
        #expect(throws: InputValueError("'1' has no unit: write 1s or 1ms (units: us, ms, s, m or h)")) { try CoalesceWindow.seconds(parsing: "1") }
    }
}

@Suite struct HostPortTests {
    @Test func readsAHostAndAPort() throws {
        let v4 = try HostPort(parsing: "127.0.0.1:8443")
        #expect(v4.host == "127.0.0.1" && v4.port == 8443 && v4.description == "127.0.0.1:8443")
        let v6 = try HostPort(parsing: "[::1]:0")
        #expect(v6.host == "::1" && v6.port == 0)
        #expect(try HostPort(parsing: ":9464").host == "0.0.0.0")
        #expect(try HostPort(parsing: "meshprobe-0.meshprobe-shards:9443").host == "meshprobe-0.meshprobe-shards")
    }

    @Test func refusesWhatHasNoPortWithOneMessage() {
        for text in ["127.0.0.1", "host:", "host:65536", "host:-1", "host:http", ""] {
            #expect(throws: InputValueError("'\(text)': expected HOST:PORT, e.g. 0.0.0.0:9464")) { try HostPort(parsing: text) }
        }
    }
}

@Suite struct RequestInputTests {
    @Test func aMethodIsATokenInUpperCase() throws {
        #expect(try HTTPMethod.parse("get") == "GET")
        #expect(try HTTPMethod.parse("M-SEARCH") == "M-SEARCH")
        for text in ["GE T", "", "GET\r\n", "PÖST"] {
            #expect(throws: InputValueError("'\(text)': must be an HTTP method token such as GET or POST (letters, digits, no spaces)")) {
                try HTTPMethod.parse(text)
            }
        }
    }

    @Test func aHeaderIsANameAndAValue() throws {
        #expect(try HeaderField(parsing: "X-Route:  canary ") == HeaderField(name: "x-route", value: "canary"))
        #expect(try HeaderField(parsing: "x-empty:").value == "")
        #expect(try HeaderField(parsing: "x-url: http://a:1/").value == "http://a:1/")
        for text in ["nocolon", ": value", ""] {
            #expect(throws: InputValueError("'\(text)': expected 'name: value'")) { try HeaderField(parsing: text) }
        }
        #expect(throws: InputValueError("':path' cannot be set: pseudo-headers come from the target and method")) {
            try HeaderField(name: ":path", value: "/")
        }
    }
}
