import Foundation
import Testing

extension EndToEnd {
    /// scripts/install-extras, what the image's build runs: the completion scripts and the man page, generated from the
    /// binary, each where its shell or man looks, and each one working.
    @Suite struct ShellExtrasTests {
        /// swift-argument-parser's generate-manual beside the binary (scripts/test builds it: `scripts/gen-man --check`).
        var generateManual: String {
            URL(fileURLWithPath: meshprobeBinary).deletingLastPathComponent().appendingPathComponent("generate-manual").path
        }

        @Test func theCompletionsAndTheManPageGoWhereTheirToolsLook() async throws {
            #expect(FileManager.default.isExecutableFile(atPath: generateManual),
                    "no \(generateManual): run scripts/gen-man --check (it builds swift-argument-parser's generate-manual)")
            let dest = try makeTemporaryDirectory("meshprobe-extras")
            defer { removeTemporaryDirectory(dest) }
            let installed = try await run(packageRoot.appendingPathComponent("scripts/install-extras").path, [dest],
                                          environment: ["PATH": "/usr/bin:/bin", "MESHPROBE": meshprobeBinary, "GENERATE_MANUAL": generateManual])
            #expect(installed.status == 0, "\(installed.stdout)\(installed.stderr)")
            let bash = "\(dest)/usr/share/bash-completion/completions/meshprobe"
            let zsh = "\(dest)/usr/share/zsh/vendor-completions/_meshprobe"
            let fish = "\(dest)/usr/share/fish/vendor_completions.d/meshprobe.fish"
            let man = "\(dest)/usr/share/man/man1/meshprobe.1.gz"
            for file in [bash, zsh, fish, man] { #expect(FileManager.default.fileExists(atPath: file), "\(file)") }

            // bash: the script parses, registers the function, and completes a command and a flag's values as
            // bash-completion calls it (extglob on).
            #expect(try await run("/bin/bash", ["-n", bash]).status == 0)
            let complete = try await run("/bin/bash", ["-O", "extglob", "-c", """
                source \(bash)
                complete -p meshprobe
                COMP_LINE='meshprobe ver'; COMP_WORDS=(meshprobe ver); COMP_CWORD=1; COMP_POINT=${#COMP_LINE}
                _meshprobe meshprobe ver meshprobe; echo "command: ${COMPREPLY[*]}"
                COMPREPLY=(); COMP_LINE='meshprobe load --sidecar '; COMP_WORDS=(meshprobe load --sidecar ''); COMP_CWORD=3; COMP_POINT=${#COMP_LINE}
                _meshprobe meshprobe '' --sidecar; echo "sidecar: ${COMPREPLY[*]}"
                """])
            #expect(complete.status == 0, "\(complete.stderr)")
            #expect(complete.stdout.contains("-F _meshprobe meshprobe"), "\(complete.stdout)")
            #expect(complete.stdout.contains("command: verify\n"), "\(complete.stdout)")
            #expect(complete.stdout.contains("sidecar: auto istio linkerd none\n"), "\(complete.stdout)")
            // zsh and fish do not run here: their scripts are the generator's, for this command.
            #expect(try String(contentsOfFile: zsh, encoding: .utf8).hasPrefix("#compdef meshprobe\n"))
            #expect(try String(contentsOfFile: fish, encoding: .utf8).contains("complete -c 'meshprobe'"))

            // The man page is the committed docs/man/meshprobe.1 (scripts/gen-man --check keeps it the binary's), and
            // groff renders it without a warning, with every command in it.
            let page = try await run("/bin/sh", ["-c", "gzip -dc \(man)"])
            #expect(page.status == 0)
            #expect(page.stdout == (try String(contentsOf: packageRoot.appendingPathComponent("docs/man/meshprobe.1"), encoding: .utf8)))
            let groff = try #require(which("groff"), "groff renders the man page: scripts/install-deps installs groff-base")
            let rendered = try await run("/bin/sh", ["-c", "gzip -dc \(man) | \(groff) -mandoc -ww -Tutf8 -P-cbou"])
            #expect(rendered.status == 0 && rendered.stderr.isEmpty, "\(rendered.stderr)")
            #expect(rendered.stdout.contains("MESHPROBE(1)"), "\(rendered.stdout.prefix(300))")
            for command in ["load", "run", "verify", "gameday", "echo", "fault", "pki", "demo", "merge"] {
                #expect(rendered.stdout.contains("\n     \(command) ") || rendered.stdout.contains("\n     \(command)\n"), "\(command) is in the page")
            }
            #expect(rendered.stdout.contains("--json-log"))
        }
    }
}
