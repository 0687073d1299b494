import ArgumentParser

@main
struct Meshprobe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Service-mesh test harness")
}
