import Foundation
import MeshprobeTestSupport
import Testing

extension EndToEnd {
    /// `expect.access` against real servers that decide by the caller's certificate: the echo's `--authorize` allow
    /// list (Envoy RBAC's answers), nginx answering 403 by `$ssl_client_s_dn`, HAProxy's `http-request deny` on
    /// `ssl_c_s_dn` and a port that resets every connection. Each caller presents its own SVID (or none, or no TLS).
    @Suite(.timeLimit(.minutes(3))) struct AccessTests {
        let pki: LabPKIFixture
        let stranger: LabPKIFixture
        let server: (cert: String, key: String)
        let prober: (cert: String, key: String)
        let frontend: (cert: String, key: String)
        let batch: (cert: String, key: String)
        let intruder: (cert: String, key: String)

        init() throws {
            pki = try LabPKIFixture()
            stranger = try LabPKIFixture(trustDomain: "stranger.meshprobe.test")
            server = try pki.svid("reviews", uris: [pki.id("reviews")])
            prober = try pki.svid("prober", uris: [pki.id("prober")])
            frontend = try pki.svid("frontend", uris: [pki.id("frontend")])
            batch = try pki.svid("batch", uris: [pki.id("batch")])
            intruder = try stranger.svid("intruder", uris: [stranger.id("intruder")])
        }

        /// A policy against `port` whose callers are the frontend, the batch job, anonymous, plaintext and foreign;
        /// `rules` are its `expect.access.rules` lines.
        func policy(port: Int, rules: String) throws -> String {
            try pki.write("access-\(UUID().uuidString).yaml", """
                policy: meshprobe.policy/v1
                target: https://127.0.0.1:\(port)/
                identity: {cert: \(prober.cert), key: \(prober.key), ca: \(pki.caFile), expectPeer: "\(pki.id("reviews"))"}
                identities:
                  \(pki.id("frontend")): {cert: \(frontend.cert), key: \(frontend.key)}
                  \(pki.id("batch")): {cert: \(batch.cert), key: \(batch.key)}
                  foreign: {cert: \(intruder.cert), key: \(intruder.key)}
                expect:
                  access:
                    rules:
                \(rules)
                """)
        }

        /// The echo as a process with `--authorize` over `allow`.
        func echo(port: Int, allow: String) async throws -> BackgroundProcess {
            let file = try pki.write("allow-\(port).yaml", allow)
            return try await BackgroundProcess(meshprobeBinary, ["echo", "--listen", "127.0.0.1:\(port)", "--cert", server.cert, "--key", server.key,
                                                                 "--ca", pki.caFile, "--workload-version", "v1", "--authorize", file],
                                               waitForPort: port)
        }

        @Test func theEchosAllowListGivesTheDeclaredMatrixAndOneChangedRuleFailsExactlyThatCell() async throws {
            let allow = """
                rules:
                  - {principals: ["\(pki.id("frontend"))"], methods: [GET], paths: ["/reviews/*"]}
                """
            let rules = """
                      - {callers: ["\(pki.id("frontend"))"], requests: [{path: /reviews/1}], expect: allow}
                      - {callers: ["\(pki.id("frontend"))"], requests: [{method: POST, path: /reviews/1}], expect: deny}
                      - {callers: ["\(pki.id("batch"))", anonymous, plaintext, foreign], requests: [{path: /reviews/1}, {method: POST, path: /reviews/1}], expect: deny}
                """
            let file = try policy(port: 1, rules: rules)
            let port = try freePort()
            let json = pki.path("access.json"), junit = pki.path("access.xml")
            do {
                let peer = try await echo(port: port, allow: allow)
                defer { peer.stop() }
                let out = try await run(meshprobeBinary, ["verify", file, "--target", "https://127.0.0.1:\(port)/", "--quiet", "--json", json], timeout: 90)
                #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
                #expect(out.stdout.contains("PASS  access: \(pki.id("batch")) -> GET /reviews/1: denied (envoy denial (RBAC)), declared deny"), "\(out.stdout)")
                #expect(out.stdout.contains("PASS  access: anonymous -> GET /reviews/1: denied (TLS alert 'certificate required'), declared deny"), "\(out.stdout)")
                #expect(out.stdout.contains("PASS  access: foreign -> POST /reviews/1: denied (TLS alert 'unknown CA'), declared deny"), "\(out.stdout)")
                #expect(out.stdout.contains("PASS  access: plaintext -> GET /reviews/1: denied (the port answered in TLS: plaintext refused), declared deny"), "\(out.stdout)")
                #expect(out.stdout.contains("access matrix (observed decision per cell, 3 tries each):"), "\(out.stdout)")
                #expect(try await ResultSchema.verify.violation(in: json) == nil)
                let verdicts = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])?["verdicts"] as? [[String: Any]])
                #expect(verdicts.count == 10 && verdicts.allSatisfy { $0["kind"] as? String == "access" && $0["passed"] as? Bool == true })
                let foreign = try #require(verdicts.first { ($0["name"] as? String) == "access: foreign -> GET /reviews/1" })
                let access = try #require((foreign["evidence"] as? [String: Any])?["access"] as? [String: Any])
                #expect(access["caller_id"] as? String == stranger.id("intruder"))
                #expect(access["observed"] as? String == "deny" && access["expected"] as? String == "deny")
                #expect(access["servers"] as? [String] == [pki.id("reviews")])
            }
            // The workload now lets the frontend POST too: exactly that cell contradicts the declaration, named in
            // the terminal, the JSON and JUnit.
            let changed = try freePort()
            let peer = try await echo(port: changed, allow: allow.replacingOccurrences(of: "methods: [GET]", with: "methods: [GET, POST]"))
            defer { peer.stop() }
            let prometheus = pki.path("access.prom"), html = pki.path("access.html")
            let out = try await run(meshprobeBinary, ["verify", file, "--target", "https://127.0.0.1:\(changed)/", "--quiet", "--json", json,
                                                      "--junit", junit, "--prometheus", prometheus, "--html", html], timeout: 90)
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            let failing = out.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL  access") }
            #expect(failing == ["FAIL  access: \(pki.id("frontend")) -> POST /reviews/1: allowed (the workload answered 200), declared deny"], "\(out.stdout)")
            #expect(out.stdout.contains("allow FAIL (declared deny)"), "the matrix marks it: \(out.stdout)")
            let verdicts = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])?["verdicts"] as? [[String: Any]])
            #expect(verdicts.filter { $0["passed"] as? Bool == false }.map { $0["name"] as? String } == ["access: \(pki.id("frontend")) -> POST /reviews/1"])
            let xml = try String(contentsOfFile: junit, encoding: .utf8)
            #expect(xml.components(separatedBy: "<failure").count == 2, "\(xml)")
            #expect(xml.contains("<testcase name=\"access: \(pki.id("frontend")) -&gt; POST /reviews/1\""), "\(xml)")
            let metrics = try String(contentsOfFile: prometheus, encoding: .utf8)
            #expect(metrics.contains("meshprobe_access_decision{source_principal=\"\(pki.id("frontend"))\",destination_principal=\"\(pki.id("reviews"))\","
                + "request=\"POST /reviews/1\",decision=\"allow\",expected=\"deny\",origin=\"the workload answered 200\",verdict=\"fail\"} 1"), "\(metrics)")
            #expect(metrics.components(separatedBy: "meshprobe_access_decision{").count == 11, "one series per cell")
            // The HTML report's matrix: one cell per verdict, the contradicted one red with its declaration.
            let page = try String(contentsOfFile: html, encoding: .utf8)
            #expect(page.contains("<table class=\"access\">"), "no access matrix")
            #expect(page.components(separatedBy: "<td class=\"cell passed\"").count == 10, "nine cells as declared")
            #expect(page.contains("<td class=\"cell failed\" data-status=\"failed\" title=\"declared deny, but allowed: 3 allowed (the workload answered 200)\">"
                + "<b>allow</b> <small>the workload answered 200</small><br><small>declared deny</small></td>"), "\(page)")
        }

        @Test func nginxDenyingByCertificateSubjectIsReadAsDenials() async throws {
            let nginx = try #require(which("nginx"))
            let upstream = try await startEcho(version: "v1", tls: nil)
            defer { Task { await upstream.close() } }
            let path = try makeTemporaryDirectory("access-nginx")
            defer { removeTemporaryDirectory(path) }
            let dir = URL(fileURLWithPath: path)
            let port = try freePort()
            let conf = dir.appendingPathComponent("nginx.conf")
            try """
                daemon off;
                master_process off;
                worker_processes 1;
                pid \(dir.path)/nginx.pid;
                error_log stderr warn;
                events { worker_connections 64; }
                http {
                    access_log off;
                    client_body_temp_path \(dir.path); proxy_temp_path \(dir.path); fastcgi_temp_path \(dir.path);
                    uwsgi_temp_path \(dir.path); scgi_temp_path \(dir.path);
                    server {
                        listen 127.0.0.1:\(port) ssl http2;
                        ssl_certificate \(server.cert); ssl_certificate_key \(server.key);
                        ssl_client_certificate \(pki.caFile); ssl_verify_client on;
                        location / {
                            if ($ssl_client_s_dn !~ "CN=frontend") { return 403; }
                            proxy_http_version 1.1;
                            proxy_pass http://127.0.0.1:\(upstream.port);
                        }
                    }
                }
                """.write(to: conf, atomically: true, encoding: .utf8)
            let peer = try await BackgroundProcess(nginx, ["-p", dir.path, "-c", conf.path, "-e", "stderr"], waitForPort: port)
            defer { peer.stop() }
            let file = try policy(port: port, rules: """
                      - {callers: ["\(pki.id("frontend"))"], requests: [{path: /reviews/1}], expect: allow}
                      - {callers: ["\(pki.id("batch"))", anonymous, plaintext, foreign], requests: [{path: /reviews/1}], expect: deny}
                """)
            let out = try await run(meshprobeBinary, ["verify", file, "--quiet"], timeout: 90)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            for line in ["PASS  access: \(pki.id("frontend")) -> GET /reviews/1: allowed (the workload answered 200), declared allow",
                         "PASS  access: \(pki.id("batch")) -> GET /reviews/1: denied (nginx denial), declared deny",
                         "PASS  access: anonymous -> GET /reviews/1: denied (nginx denial (no client certificate)), declared deny",
                         "PASS  access: plaintext -> GET /reviews/1: denied (nginx denial (plaintext refused)), declared deny",
                         "PASS  access: foreign -> GET /reviews/1: denied (nginx denial (client certificate refused)), declared deny"] {
                #expect(out.stdout.contains(line), "\(line)\n\(out.stdout)")
            }
        }

        @Test func haproxyACLsOnTheClientCertificateAndAPortThatResets() async throws {
            let upstream = try await startEcho(version: "v1", tls: nil)
            defer { Task { await upstream.close() } }
            let dir = try haproxyDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let pem = dir.appendingPathComponent("server.pem").path
            try (String(contentsOfFile: server.cert, encoding: .utf8) + String(contentsOfFile: server.key, encoding: .utf8))
                .write(toFile: pem, atomically: true, encoding: .utf8)
            let (port, strict) = (try freePort(), try freePort())
            let peer = try await startHAProxy(config: """
                global
                    log stderr format raw local0 err
                defaults
                    timeout connect 2s
                    timeout client 5s
                    timeout server 5s
                frontend mesh
                    mode http
                    bind 127.0.0.1:\(port) ssl crt \(pem) ca-file \(pki.caFile) verify required alpn h2,http/1.1
                    http-request deny if !{ ssl_c_s_dn(CN) -m str frontend }
                    default_backend echo
                frontend strict
                    mode tcp
                    bind 127.0.0.1:\(strict)
                    tcp-request connection reject
                backend echo
                    mode http
                    server e1 127.0.0.1:\(upstream.port) proto h2

                """, in: dir, waitForPort: port)
            defer { peer.stop() }
            let file = try policy(port: port, rules: """
                      - {callers: ["\(pki.id("frontend"))"], requests: [{path: /reviews/1}], expect: allow}
                      - {callers: ["\(pki.id("batch"))", anonymous, foreign], requests: [{path: /reviews/1}], expect: deny}
                      - {callers: [plaintext], requests: [{path: /reviews/1, port: \(strict)}], expect: deny}
                """)
            let out = try await run(meshprobeBinary, ["verify", file, "--quiet"], timeout: 90)
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            for line in ["PASS  access: \(pki.id("batch")) -> GET /reviews/1: denied (haproxy denial), declared deny",
                         "PASS  access: anonymous -> GET /reviews/1: denied (TLS alert 'certificate required'), declared deny",
                         "PASS  access: plaintext -> GET :\(strict)/reviews/1: denied (connection_lost before a response), declared deny"] {
                #expect(out.stdout.contains(line), "\(line)\n\(out.stdout)")
            }
        }
    
        /// `--mesh-alpn istio` and a target's `meshAlpn: istio` offer Istio's in-mesh ALPN before h2 and http/1.1, in
        /// the order Istio's own sidecars do, as openssl's s_server sees the ClientHello; without them, h2 and http/1.1.
        @Test func meshALPNOffersIstiosProtocols() async throws {
            func offered(_ arguments: (Int) throws -> [String]) async throws -> [String] {
                let port = try freePort()
                let server = try SignalledProcess("/usr/bin/env", [
                    "openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-cert", self.server.cert, "-key", self.server.key,
                    "-alpn", "h2", "-trace", "-www", "-naccept", "1"])
                defer { server.send(SIGTERM) }
                _ = try await server.wait(upTo: 10) { (server.stdout + server.stderr).contains("ACCEPT") }
                _ = try await run(meshprobeBinary, try arguments(port), timeout: 30)
                _ = try await server.wait(upTo: 10) { server.stdout.contains("application_layer_protocol_negotiation") }
                // The ClientHello's ALPN list: the indented lines after its extension header.
                let lines = server.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let start = lines.firstIndex(where: { $0.hasPrefix("extension_type=application_layer_protocol_negotiation") }) else { return [] }
                return Array(lines[(start + 1)...].prefix { !$0.hasPrefix("extension_type=") })
            }
            let load = try await offered { port in
                ["load", "https://127.0.0.1:\(port)/", "--mesh-alpn", "istio", "--ca", pki.caFile, "--expect-peer", pki.id("reviews"), "-n", "1", "--quiet"]
            }
            #expect(load == ["istio-h2", "istio-http/1.1", "istio", "h2", "http/1.1"], "\(load)")
            let http2 = try await offered { port in
                ["load", "https://127.0.0.1:\(port)/", "--mesh-alpn", "istio", "--http", "2", "--ca", pki.caFile, "-n", "1", "--quiet", "-k"]
            }
            #expect(http2 == ["istio-h2", "istio", "h2"], "\(http2)")
            let scenario = try await offered { port in
                let file = try pki.write("mesh-alpn-\(port).yaml", """
                    target: {url: "https://127.0.0.1:\(port)/", meshAlpn: istio}
                    identity: {ca: \(pki.caFile), expectPeer: "\(pki.id("reviews"))"}
                    load: {requests: 1}
                    """)
                return ["run", file, "--quiet"]
            }
            #expect(scenario == ["istio-h2", "istio-http/1.1", "istio", "h2", "http/1.1"], "\(scenario)")
            let plain = try await offered { port in
                ["load", "https://127.0.0.1:\(port)/", "--ca", pki.caFile, "--expect-peer", pki.id("reviews"), "-n", "1", "--quiet"]
            }
            #expect(plain == ["h2", "http/1.1"], "\(plain)")
            let refused = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "--mesh-alpn", "istio", "-n", "1"], timeout: 30)
            #expect(refused.status == 2 && refused.stderr.contains("--mesh-alpn istio needs https:// URLs"), "\(refused.stderr)")
        }

        /// A game day's access step: the same cells and verdicts as verify's; a contradicted cell fails the step (exit
        /// 1) and is named in the result.
        @Test func aGameDaysAccessStepFailsOnAContradictedCell() async throws {
            let port = try freePort()
            let peer = try await echo(port: port, allow: "rules:\n  - {principals: [\"\(pki.id("frontend"))\"], paths: [\"/reviews/*\"]}\n")
            defer { peer.stop() }
            let file = try pki.write("access-gameday.yaml", """
                name: access after a rotation
                target: https://127.0.0.1:\(port)/
                identity: {cert: \(prober.cert), key: \(prober.key), ca: \(pki.caFile), expectPeer: "\(pki.id("reviews"))"}
                identities:
                  \(pki.id("frontend")): {cert: \(frontend.cert), key: \(frontend.key)}
                gameday:
                  steps:
                    - name: who may call reviews
                      access:
                        rules:
                          - {callers: ["\(pki.id("frontend"))"], requests: [{path: /reviews/1}], expect: allow}
                          - {callers: [anonymous, plaintext], requests: [{path: /reviews/1}], expect: deny}
                          - {callers: ["\(pki.id("frontend"))"], requests: [{method: DELETE, path: /reviews/1}], expect: deny}
                """)
            let check = try await run(meshprobeBinary, ["gameday", file, "--check"], timeout: 30)
            #expect(check.status == 0 && check.stdout.contains("1. who may call reviews: access, 4 cells (of 3 callers and 2 requests), 3 tries each"),
                    "\(check.stdout)\(check.stderr)")
            let json = pki.path("access-gameday.json")
            let out = try await run(meshprobeBinary, ["gameday", file, "--quiet", "--json", json], timeout: 90)
            #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("access: \(pki.id("frontend")) -> DELETE /reviews/1: allowed (the workload answered 200), declared deny"),
                    "\(out.stdout)")
            let result = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            let step = try #require((result["steps"] as? [[String: Any]])?.first)
            #expect(step["kind"] as? String == "access" && step["passed"] as? Bool == false && step["decided"] as? Bool == true, "\(step)")
            let verdicts = try #require(step["verdicts"] as? [[String: Any]])
            #expect(verdicts.filter { $0["passed"] as? Bool == false }.map { $0["name"] as? String } == ["access: \(pki.id("frontend")) -> DELETE /reviews/1"])
            #expect(try await ResultSchema.gameday.violation(in: json) == nil)
        }
    }
}
