import MeshprobeLoad
import MeshprobeSpec

/// Flags as the user typed them, for messages: `-n 0` is refused as `-n`, `--requests 0` as `--requests`.
///
/// ArgumentParser does not say which of a flag's names was used, so the command line tells: the last occurrence of
/// either name is the one that took effect.
enum FlagSpelling {
    /// The long names that have a short one, across the commands (`load`, `demo`).
    static let shortNames = ["--connections": "-c", "--streams": "-m", "--requests": "-n", "--duration": "-d",
                             "--header": "-H", "--insecure": "-k"]

    /// `long` as it was typed on `arguments` (`-n` or `--requests`); `long` when it has no short name or was not typed.
    static func typed(_ long: String, in arguments: [String] = CommandLine.arguments) -> String {
        guard let short = shortNames[long] else { return long }
        // After `--` every argument is positional.
        for argument in arguments.dropFirst().prefix(while: { $0 != "--" }).reversed() {
            if argument == short || argument.hasPrefix(short + "=") { return short }
            if argument == long || argument.hasPrefix(long + "=") { return long }
        }
        return long
    }

    /// `field` (a flag, or a flag and what follows it, as `LoadPlanError` names them: `--requests`,
    /// `--header x-a`) with its flag as typed.
    static func typedField(_ field: String, in arguments: [String] = CommandLine.arguments) -> String {
        let flag = field.prefix { $0 != " " && $0 != "/" }
        let typed = typed(String(flag), in: arguments)
        return typed + field.dropFirst(flag.count)
    }
}

extension LoadPlanError {
    /// The description with the flag as the user typed it.
    var typedDescription: String {
        var error = self
        error.field = FlagSpelling.typedField(field)
        return error.description
    }
}
