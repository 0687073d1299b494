import Foundation
import MeshprobeSpec
import MeshprobeYAML

/// What the command line changes in a scenario, policy or game-day file before it is read (`--target`, `--svid-dir`,
/// `--set`), so a repository's example files run against a user's lab without editing. The changes are made to the
/// YAML tree, so the file's own checks judge the result and name the field.
public struct FileOverrides: Sendable, Equatable {
    /// `--target URL` (repeatable): these URLs replace the file's `target` or `targets`, all of them (a `{url, sni}`
    /// target's `sni` goes with it).
    public var targets: [String] = []
    /// `--svid-dir DIR`: replaces `identity.svidDir` and takes out `identity.cert`, `identity.key` and `identity.ca`
    /// (which would win over the directory's files), and `identity.workloadApi` and `workloadApiSvid` (another source
    /// of the SVID: a policy written for SPIRE runs against a lab's files); `expectPeer`, `sni`, `insecure`, `trustBundles`,
    /// `tlsSecurityLevel` and `allowNonSVIDPeer` stay as the file says. Relative to the working directory.
    public var svidDir: String?
    /// `--set FIELD=VALUE` (repeatable), applied after the two above, in order.
    public var assignments: [YAMLOverride] = []
    /// `--mesh-alpn istio`: every target offers the mesh's ALPN, as a file's `meshAlpn` says (set on the targets once
    /// they are read: a target may be a bare URL).
    public var meshALPN: MeshALPN?

    public init(targets: [String] = [], svidDir: String? = nil, assignments: [YAMLOverride] = [], meshALPN: MeshALPN? = nil) {
        self.targets = targets
        self.svidDir = svidDir
        self.assignments = assignments
        self.meshALPN = meshALPN
    }

    public var isEmpty: Bool { targets.isEmpty && svidDir == nil && assignments.isEmpty && meshALPN == nil }

    /// The changes to the file's tree, in the order they apply.
    public var changes: [YAMLOverride] {
        var out: [YAMLOverride] = []
        if !targets.isEmpty {
            out.append(YAMLOverride(keys: ["target"], change: .remove, source: "--target"))
            out.append(YAMLOverride(keys: ["targets"], change: .scalars(targets), source: "--target"))
        }
        if let svidDir {
            for key in ["cert", "key", "ca", "workloadApi", "workloadApiSvid"] {
                out.append(YAMLOverride(keys: ["identity", key], change: .remove, source: "--svid-dir"))
            }
            out.append(YAMLOverride(keys: ["identity", "svidDir"], change: .scalar(URL(fileURLWithPath: svidDir).path),
                                    source: "--svid-dir \(svidDir)"))
        }
        return out + assignments
    }
}
