import ArgumentParser
import MeshprobeScenario
import MeshprobeSpec
import MeshprobeYAML

/// The flags that change a scenario, policy or game-day file before it is read (`run`, `verify`, `gameday`), so a
/// repository's example files run against a user's lab without editing. The file's own checks judge the result:
/// an error in a value set here is reported at the field's place in the file, saying where the value came from.
struct FileOverrideOptions: ParsableArguments {
    @Option(name: .customLong("target"), help: ArgumentHelp(
        "Replace the file's target or targets, all of them, with this URL (repeatable: the targets are then these URLs; a {url, sni} target's sni goes too).",
        valueName: "url"), transform: InputArgument.targetURL)
    var targets: [String] = []

    @Option(name: .customLong("svid-dir"), help: ArgumentHelp(
        "Replace the file's identity.svidDir with this directory, and drop identity.cert, key, ca and workloadApi (expectPeer, sni, insecure, trustBundles stay). Relative to the working directory.",
        valueName: "dir"), completion: .directory)
    var svidDir: String?

    @Option(name: .customLong("set"), parsing: .unconditionalSingleValue, help: ArgumentHelp(
        "Set one scalar field of the file by its dotted path, as the file would write it: load.connections=20, expect.tolerance=0.03, gameday.steps[0].rate=50 (repeatable; after --target and --svid-dir).",
        valueName: "field=value"), transform: InputArgument.fieldAssignment)
    var assignments: [YAMLOverride] = []

    @Option(name: .customLong("mesh-alpn"), help: ArgumentHelp(
        "Offer this mesh's ALPN on every target, as a target's meshAlpn does: istio (a direct mTLS connection to an Istio sidecar's inbound port needs it).",
        valueName: "mesh"), transform: InputArgument.meshALPN)
    var meshALPN: MeshALPN?

    var overrides: FileOverrides { FileOverrides(targets: targets, svidDir: svidDir, assignments: assignments, meshALPN: meshALPN) }
}
