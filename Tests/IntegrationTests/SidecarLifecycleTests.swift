import Foundation
import MeshprobeEcho
import NIOPosix
import Testing

extension EndToEnd {
    /// `--sidecar` end to end through the meshprobe binary, against local servers that behave as Istio's and Linkerd's
    /// admin endpoints are documented to (neither proxy runs here): the prober waits for readiness before its first
    /// request, stops the proxy on every way out, and bounds the wait.
    @Suite(.timeLimit(.minutes(2)), .tags(.timing)) struct SidecarLifecycleTests {
        @Test func istioProxyIsWaitedForBeforeTheFirstRequestAndToldToQuitAfter() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let status = try await FakeSidecarAdmin.istioStatus(readyAfter: 3, observe: { echo.requestsServed })
            let agent = try await FakeSidecarAdmin.istioAgent()
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "20", "--quiet",
                                                      "--sidecar", "istio", "--sidecar-istio-ready-port", "\(status.port)",
                                                      "--sidecar-istio-quit-port", "\(agent.port)"], timeout: 60)
            #expect(out.status == 0, "\(out.stderr)")
            // Three 503s, then the 200; the echo had served nothing when the proxy was found ready.
            #expect(status.readinessProbes.map(\.status) == [503, 503, 503, 200])
            #expect(status.readinessProbes.allSatisfy { $0.note == 0 })
            #expect(echo.requestsServed == 20)
            // One POST /quitquitquit, after the load.
            #expect(agent.shutdowns.count == 1)
            #expect(agent.requests.count == 1)
            #expect(out.stderr.contains("the istio proxy is ready"), "\(out.stderr)")
            #expect(out.stderr.contains("asked the istio proxy to stop (POST http://127.0.0.1:\(agent.port)/quitquitquit: 200)"), "\(out.stderr)")
            await status.close()
            await agent.close()
        }

        @Test func theQuitComesAfterTheLastRequest() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let linkerd = try await FakeSidecarAdmin.linkerd(readyAfter: 0, observe: { echo.requestsServed })
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "50", "--quiet",
                                                      "--sidecar", "linkerd", "--sidecar-linkerd-port", "\(linkerd.port)"], timeout: 60)
            #expect(out.status == 0, "\(out.stderr)")
            #expect(linkerd.readinessProbes.map(\.status) == [200])
            #expect(linkerd.shutdowns.map(\.note) == [50], "the shutdown must see every request served")
            await linkerd.close()
        }

        @Test func aProxyThatNeverGetsReadyEndsTheWaitWithExit3AndNothingSent() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let linkerd = try await FakeSidecarAdmin.linkerd(readyAfter: nil)
            let started = Date()
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "20", "--quiet",
                                                      "--sidecar", "linkerd", "--sidecar-linkerd-port", "\(linkerd.port)",
                                                      "--sidecar-timeout", "1s"], timeout: 30)
            let took = Date().timeIntervalSince(started)
            #expect(out.status == 3, "\(out.stderr)")
            #expect(out.stderr.contains("the linkerd proxy was not ready: http://127.0.0.1:\(linkerd.port)/ready last said HTTP 503"), "\(out.stderr)")
            #expect(out.stderr.contains("--sidecar-timeout"), "\(out.stderr)")
            #expect(echo.requestsServed == 0)
            #expect(linkerd.readinessProbes.count >= 3, "probed every 250 ms for a second")
            // Still told to stop, so the Job ends instead of hanging on the proxy.
            #expect(linkerd.shutdowns.count == 1)
            #expect(took < 10, "the wait is bounded by --sidecar-timeout: took \(took) s")
            await linkerd.close()
        }

        @Test func sigtermInTheMiddleOfARunStillStopsTheProxy() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let status = try await FakeSidecarAdmin.istioStatus(readyAfter: 0)
            let agent = try await FakeSidecarAdmin.istioAgent()
            let prober = try SignalledProcess(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-d", "30s", "--rate", "200", "--quiet",
                                                                "--sidecar", "istio", "--sidecar-istio-ready-port", "\(status.port)",
                                                                "--sidecar-istio-quit-port", "\(agent.port)"])
            try #require(try await prober.wait { echo.requestsServed > 50 }, "the load is running: \(prober.stderr)")
            #expect(agent.shutdowns.isEmpty, "no quit before the end")
            let out = try await prober.terminate()
            #expect(out.status == 3, "\(out.stderr)")
            #expect(out.stdout.contains("aborted") || out.stderr.contains("aborted"), "\(out.stdout)\(out.stderr)")
            #expect(agent.shutdowns.count == 1, "\(out.stderr)")
            await status.close()
            await agent.close()
        }

        @Test func sigtermWhileWaitingForTheProxyStopsItAndSendsNothing() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let linkerd = try await FakeSidecarAdmin.linkerd(readyAfter: nil)
            let prober = try SignalledProcess(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "10", "--quiet",
                                                                "--sidecar", "linkerd", "--sidecar-linkerd-port", "\(linkerd.port)",
                                                                "--sidecar-timeout", "60s"])
            try #require(try await prober.wait { linkerd.readinessProbes.count >= 2 }, "the prober is waiting: \(prober.stderr)")
            let started = Date()
            let out = try await prober.terminate()
            #expect(out.status == 3, "\(out.stderr)")
            #expect(out.stderr.contains("aborted by a signal while waiting for the sidecar"), "\(out.stderr)")
            #expect(Date().timeIntervalSince(started) < 5)
            #expect(echo.requestsServed == 0)
            #expect(linkerd.shutdowns.count == 1)
            await linkerd.close()
        }

        @Test func aBrokenPolicyFailsFastAndStillStopsTheProxy() async throws {
            // The policy as a ConfigMap mounts it: a file in a directory; its error names the file, line and field.
            let mount = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-policies-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: mount) }
            let policy = mount.appendingPathComponent("canary.yaml").path
            try """
                policy: meshprobe.policy/v1
                target: http://127.0.0.1:1/
                load: {connections: 2}
                expect:
                  split: {v1: 90, v2: 10}
                  tolerence: 0.05
                """.write(toFile: policy, atomically: true, encoding: .utf8)
            let status = try await FakeSidecarAdmin.istioStatus(readyAfter: 0)
            let agent = try await FakeSidecarAdmin.istioAgent()
            let out = try await run(meshprobeBinary, ["verify", policy, "--quiet", "--sidecar", "istio",
                                                      "--sidecar-istio-ready-port", "\(status.port)", "--sidecar-istio-quit-port", "\(agent.port)"], timeout: 30)
            #expect(out.status == 2, "\(out.stderr)")
            #expect(out.stderr.contains("\(policy):6:"), "\(out.stderr)")
            #expect(out.stderr.contains("tolerence"), "\(out.stderr)")
            #expect(status.readinessProbes.isEmpty, "bad input is reported before waiting for the proxy")
            #expect(agent.shutdowns.count == 1, "\(out.stderr)")
            await status.close()
            await agent.close()
        }

        /// A value the argument parser refuses ends meshprobe before the command runs; the proxy the flags name is still
        /// told to stop.
        @Test func aFlagValueRefusedWhileParsingStillStopsTheProxyTheFlagsName() async throws {
            let agent = try await FakeSidecarAdmin.istioAgent()
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "-d", "10", "--sidecar", "istio",
                                                      "--sidecar-istio-quit-port=\(agent.port)"], timeout: 30)
            #expect(out.status == 2, "\(out.stderr)")
            #expect(out.stderr.contains("-d: '10' has no unit"), "\(out.stderr)")
            #expect(agent.shutdowns.count == 1, "\(out.stderr)")
            await agent.close()
        }

        @Test func aMissingSVIDMountIsNamed() async throws {
            let out = try await run(meshprobeBinary, ["load", "https://127.0.0.1:1/", "-n", "1", "--svid-dir", "/var/run/secrets/meshprobe-not-mounted"])
            #expect(out.status == 2)
            #expect(out.stderr.contains("--svid-dir '/var/run/secrets/meshprobe-not-mounted': no such directory"), "\(out.stderr)")
            let empty = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-svid-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: empty) }
            let files = try await run(meshprobeBinary, ["load", "https://127.0.0.1:1/", "-n", "1", "--svid-dir", empty.path])
            #expect(files.status == 2)
            #expect(files.stderr.contains("missing or unreadable \(empty.path)/cert-chain.pem, \(empty.path)/key.pem"), "\(files.stderr)")
        }

        @Test func autoFindsTheProxyThatAnswersAndStopsIt() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let linkerd = try await FakeSidecarAdmin.linkerd(readyAfter: 2)
            let closed = try freePort()
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "10", "--quiet", "--sidecar", "auto",
                                                      "--sidecar-linkerd-port", "\(linkerd.port)",
                                                      "--sidecar-istio-ready-port", "\(closed)", "--sidecar-istio-quit-port", "\(closed)"], timeout: 30)
            #expect(out.status == 0, "\(out.stderr)")
            #expect(linkerd.readinessProbes.map(\.status) == [503, 503, 200])
            #expect(linkerd.shutdowns.count == 1)
            #expect(out.stderr.contains("the linkerd proxy is ready"), "\(out.stderr)")
            await linkerd.close()
        }

        @Test func autoWithNothingListeningSendsWithoutASidecar() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let closed = try freePort()
            let started = Date()
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "10", "--quiet", "--sidecar", "auto",
                                                      "--sidecar-linkerd-port", "\(closed)",
                                                      "--sidecar-istio-ready-port", "\(closed)", "--sidecar-istio-quit-port", "\(closed)"], timeout: 30)
            #expect(out.status == 0, "\(out.stderr)")
            #expect(out.stderr.contains("sidecar: none found"), "\(out.stderr)")
            #expect(!out.stderr.contains("stop"), "nothing to stop: \(out.stderr)")
            #expect(echo.requestsServed == 10)
            #expect(Date().timeIntervalSince(started) >= 2, "the detection window is 2 s")
        }

        @Test func aNativeSidecarIsLeftToKubernetes() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let status = try await FakeSidecarAdmin.istioStatus(readyAfter: nil)
            let agent = try await FakeSidecarAdmin.istioAgent()
            var environment = ProcessInfo.processInfo.environment
            environment["MESHPROBE_SIDECAR"] = "istio"
            environment["MESHPROBE_NATIVE_SIDECAR"] = "true"
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "10", "--quiet",
                                                      "--sidecar-istio-ready-port", "\(status.port)", "--sidecar-istio-quit-port", "\(agent.port)"],
                                    timeout: 30, environment: environment)
            #expect(out.status == 0, "\(out.stderr)")
            #expect(out.stderr.contains("MESHPROBE_NATIVE_SIDECAR is set"), "\(out.stderr)")
            #expect(status.requests.isEmpty && agent.requests.isEmpty)
            // The control: the same environment without the native flag waits (and, never ready, gives up).
            environment["MESHPROBE_NATIVE_SIDECAR"] = nil
            let control = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "10", "--quiet", "--sidecar-timeout", "500ms",
                                                          "--sidecar-istio-ready-port", "\(status.port)", "--sidecar-istio-quit-port", "\(agent.port)"],
                                        timeout: 30, environment: environment)
            #expect(control.status == 3, "\(control.stderr)")
            #expect(!status.readinessProbes.isEmpty && agent.shutdowns.count == 1)
            await status.close()
            await agent.close()
        }

        @Test func linkerdWithoutItsShutdownEndpointIsAWarningThatSaysWhatToEnable() async throws {
            let echo = try await startEcho(version: "v1", tls: nil)
            defer { Task { await echo.close() } }
            let linkerd = try await FakeSidecarAdmin.linkerd(readyAfter: 0, shutdownStatus: 404)
            let out = try await run(meshprobeBinary, ["load", "http://127.0.0.1:\(echo.port)/", "-n", "10", "--quiet",
                                                      "--sidecar", "linkerd", "--sidecar-linkerd-port", "\(linkerd.port)"], timeout: 30)
            #expect(out.status == 0, "the verdict's exit code stands: \(out.stderr)")
            #expect(out.stderr.contains("refused to stop (POST http://127.0.0.1:\(linkerd.port)/shutdown: 404)"), "\(out.stderr)")
            #expect(out.stderr.contains("config.linkerd.io/proxy-admin-shutdown: enabled"), "\(out.stderr)")
            await linkerd.close()
        }

        @Test func badValuesAreRefused() async throws {
            let mode = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "-n", "1", "--sidecar", "envoy"])
            #expect(mode.status == 2 && mode.stderr.contains("--sidecar 'envoy': expected auto, istio, linkerd or none"), "\(mode.stderr)")
            let timeout = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "-n", "1", "--sidecar", "istio", "--sidecar-timeout", "soon"])
            #expect(timeout.status == 2 && timeout.stderr.contains("--sidecar-timeout: 'soon' is not a duration"), "\(timeout.stderr)")
            var environment = ProcessInfo.processInfo.environment
            environment["MESHPROBE_SIDECAR"] = "consul"
            let env = try await run(meshprobeBinary, ["load", "http://127.0.0.1:1/", "-n", "1"], environment: environment)
            #expect(env.status == 2 && env.stderr.contains("MESHPROBE_SIDECAR='consul'"), "\(env.stderr)")
        }
    }
}
