import Foundation
import Testing

extension EndToEnd {
    /// manifests/ validated offline, as CI does: scripts/validate-manifests builds every kustomization with the pinned
    /// `kubectl kustomize` and checks every object with kubernetes-validate (strict), the Argo Rollouts and Flagger
    /// resources against their structural schemas, the policies in the ConfigMap against the policy schema, and the
    /// Job rules of issue 7. Broken manifests show that each check can fail.
    @Suite(.timeLimit(.minutes(3))) struct ManifestTests {
        private var root: URL {
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        }

        private var kubectl: String {
            ProcessInfo.processInfo.environment["MESHPROBE_KUBECTL"] ?? "/usr/local/lib/meshprobe-test/kubectl/kubectl"
        }

        private func validate(_ targets: [String]) async throws -> ProcessOutput {
            let python = try #require(which("python3"))
            return try await run(python, [root.appendingPathComponent("scripts/validate-manifests").path, "--kubectl", kubectl] + targets, timeout: 120)
        }

        private func build(_ directory: String) async throws -> String {
            let out = try await run(kubectl, ["kustomize", root.appendingPathComponent("manifests/\(directory)").path], timeout: 60)
            #expect(out.status == 0, "\(directory): \(out.stderr)")
            return out.stdout
        }

        @Test func everyKustomizationBuildsAndEveryObjectIsValid() async throws {
            #expect(FileManager.default.isExecutableFile(atPath: kubectl), "no pinned kubectl at \(kubectl): run scripts/install-deps")
            let out = try await validate([])
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            // config, base, eight overlays, three integrations.
            #expect(out.stdout.contains("checked 13 kustomizations or files"), "\(out.stdout)")
            #expect(out.stdout.contains(" 0 problems"), "\(out.stdout)")
        }

        @Test func theOverlaysPutTheJobWhereTheySay() async throws {
            let istio = try await build("overlays/istio")
            #expect(istio.contains("holdApplicationUntilProxyStarts") && istio.contains("value: istio"), "\(istio)")
            #expect(istio.contains("target: http://reviews.bookinfo.svc.cluster.local:8080/reviews"), "h2c to the sidecar")
            let linkerd = try await build("overlays/linkerd")
            #expect(linkerd.contains("config.linkerd.io/proxy-admin-shutdown: enabled") && linkerd.contains("value: linkerd"), "\(linkerd)")
            let native = try await build("overlays/native-sidecar")
            #expect(native.contains("name: MESHPROBE_NATIVE_SIDECAR") && native.contains("sidecar.istio.io/nativeSidecar"), "\(native)")
            let none = try await build("overlays/no-mesh")
            #expect(none.contains("value: none") && none.contains("secretName: meshprobe-svid") && none.contains("linkerd.io/inject: disabled"), "\(none)")
            #expect(none.contains("target: https://reviews.bookinfo.svc.cluster.local:8443/reviews"), "meshprobe's own mTLS")
            let sharded = try await build("overlays/sharded")
            #expect(sharded.contains("completionMode: Indexed") && sharded.contains("clusterIP: None"), "\(sharded)")
            #expect(sharded.contains("--shards") && sharded.contains("meshprobe-0.meshprobe-shards:9443") && !sharded.contains("--junit"), "\(sharded)")
            let echo = try await build("overlays/echo")
            #expect(echo.contains("--control-allow") && echo.contains("name: reviews-v1") && echo.contains("name: reviews-v2"), "\(echo)")
            // The SVID from the SPIRE agent's socket (the SPIFFE CSI driver), not from the Secret.
            let spire = try await build("overlays/spire-workload-api")
            #expect(spire.contains("driver: csi.spiffe.io") && spire.contains("workloadApi: unix:///spiffe-workload-api/spire-agent.sock"), "\(spire)")
            #expect(spire.contains("mountPath: /spiffe-workload-api") && !spire.contains("meshprobe-svid")
                    && !spire.contains("mountPath: /var/run/secrets/workload-spiffe-credentials"), "\(spire)")
            #expect(spire.contains("- verify") && spire.contains("--json-log") && !spire.contains("svidDir"), "\(spire)")
            // Every prober pod runs the placeholder image docs/kubernetes.md documents.
            for overlay in [istio, linkerd, native, none, spire] {
                #expect(overlay.contains("image: registry.example.com/meshprobe:0.1.0"))
            }
            // Every prober Job's result leaves it in the Job's log (the sharded one's in pod 0's), and the JUnit XML
            // with it but for the sharded one.
            let gameday = try await build("overlays/gameday")
            for overlay in [istio, linkerd, native, none, sharded, gameday] {
                #expect(overlay.contains("--json-log") && !overlay.contains("--json\""), "\(overlay)")
                #expect(overlay.contains("--junit-log") == (overlay != sharded), "\(overlay)")
            }
        }

        /// The game day the gameday overlay mounts passes `meshprobe gameday --check` with the Job's caps as it is:
        /// `--check` reads none of the identity's files, so the Secret need not be mounted where the check runs.
        @Test func theGameDayOverlaysFilePassesTheCheck() async throws {
            let file = root.appendingPathComponent("manifests/overlays/gameday/reviews.yaml").path
            let out = try await run(meshprobeBinary, ["gameday", file, "--check", "--max-duration", "10m", "--max-rate", "500"])
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("3 steps") && out.stdout.contains("  3. "), "\(out.stdout)")
            #expect(out.stdout.contains("identity: svidDir /var/run/secrets/workload-spiffe-credentials (not read: --check)"), "\(out.stdout)")
        }

        /// The policy the spire-workload-api overlay mounts passes `meshprobe verify --check`, which names the socket
        /// without calling it.
        @Test func theWorkloadAPIOverlaysPolicyPassesTheCheck() async throws {
            let file = root.appendingPathComponent("manifests/overlays/spire-workload-api/canary.yaml").path
            let out = try await run(meshprobeBinary, ["verify", file, "--check"])
            #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
            #expect(out.stdout.contains("identity: workloadApi unix:///spiffe-workload-api/spire-agent.sock (not called: --check)"), "\(out.stdout)")
        }

        @Test func brokenManifestsAreRejectedEachForItsOwnReason() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-manifests-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            // A pod every rule accepts, so each case below breaks one thing only (indented for spec.template.spec).
            let pod = [
                "      restartPolicy: Never",
                "      containers:",
                "        - name: meshprobe",
                "          image: meshprobe:1",
                "          resources: {requests: {cpu: 100m}, limits: {cpu: \"1\"}}",
                "          securityContext:",
                "            runAsNonRoot: true",
                "            readOnlyRootFilesystem: true",
                "            allowPrivilegeEscalation: false",
                "            capabilities: {drop: [ALL]}",
                "            seccompProfile: {type: RuntimeDefault}",
            ].joined(separator: "\n")
            func analysisTemplate(provider: String) -> String {
                "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  metrics:\n    - name: m\n      provider: \(provider)\n"
            }
            func job(_ spec: String = "backoffLimit: 0\n  activeDeadlineSeconds: 60", pod: String) -> String {
                "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  \(spec)\n  template:\n    spec:\n\(pod)\n"
            }
            let control = dir.appendingPathComponent("control.yaml")
            try job(pod: pod).write(to: control, atomically: true, encoding: .utf8)
            let ok = try await validate([control.path])
            #expect(ok.status == 0, "the control was rejected: \(ok.stdout)\(ok.stderr)")

            let cases: [(name: String, yaml: String, expected: String)] = [
                ("an unknown field", job(pod: pod.replacingOccurrences(of: "restartPolicy: Never", with: "restartPolicy: Never\n      restartPolcy: Never")),
                 "'restartPolcy' was unexpected"),
                ("a retried Job", job("backoffLimit: 3\n  activeDeadlineSeconds: 60", pod: pod), "backoffLimit must be 0"),
                ("no deadline", job("backoffLimit: 0", pod: pod), "activeDeadlineSeconds is required"),
                ("a writable root", job(pod: pod.replacingOccurrences(of: "readOnlyRootFilesystem: true", with: "readOnlyRootFilesystem: false")),
                 "readOnlyRootFilesystem: true"),
                ("an Argo metric with a misspelt provider", analysisTemplate(provider: "{jobs: {spec: {template: {}}}}"), "'jobs' was unexpected"),
                ("an Argo Job provider whose Job is invalid",
                 analysisTemplate(provider: "{job: {spec: {backoffLimit: 0, activeDeadlineSeconds: 60, template: {spec: {restartPolicy: Never, containers: [{name: a, image: b, imagePullPolcy: Always}]}}}}}"),
                 "'imagePullPolcy' was unexpected"),
                ("a Flagger webhook with an unknown type", """
                    apiVersion: flagger.app/v1beta1
                    kind: Canary
                    metadata: {name: c}
                    spec:
                      targetRef: {apiVersion: apps/v1, kind: Deployment, name: reviews}
                      service: {port: 8080}
                      analysis:
                        interval: 1m
                        threshold: 2
                        webhooks: [{name: w, type: pre-rolout, url: "http://t/"}]
                    """, "'pre-rolout' is not one of"),
                ("a broken policy in the ConfigMap", """
                    apiVersion: v1
                    kind: ConfigMap
                    metadata: {name: meshprobe-policies}
                    data:
                      canary.yaml: |
                        policy: meshprobe.policy/v1
                        target: http://reviews:8080/
                        expect: {split: {v1: 90, v2: 10}, tolerence: 0.05}
                    """, "policy canary.yaml"),
                ("an unknown kind", "apiVersion: v1\nkind: Servise\nmetadata: {name: s}\n", "Servise"),
            ]
            for (i, c) in cases.enumerated() {
                let file = dir.appendingPathComponent("case-\(i).yaml")
                try c.yaml.write(to: file, atomically: true, encoding: .utf8)
                let out = try await validate([file.path])
                #expect(out.status == 1, "\(c.name) was not rejected: \(out.stdout)\(out.stderr)")
                #expect(out.stdout.contains(c.expected), "\(c.name): \(out.stdout)\(out.stderr)")
            }

            // A kustomization that does not build.
            let broken = dir.appendingPathComponent("broken")
            try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
            try "resources:\n  - missing.yaml\n".write(to: broken.appendingPathComponent("kustomization.yaml"), atomically: true, encoding: .utf8)
            let out = try await validate([broken.path])
            #expect(out.status == 1 && out.stdout.contains("kubectl kustomize failed"), "\(out.stdout)\(out.stderr)")
        }
    }
}
