import Foundation

/// The package's root directory (this file is `Tests/MeshprobeTestSupport/Binaries.swift` in it).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The meshprobe binary built next to the tests: the debug build when there is one, else the release build.
public var meshprobeBinary: String {
    for config in ["debug", "release"] {
        let path = packageRoot.appendingPathComponent(".build/\(config)/meshprobe").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return packageRoot.appendingPathComponent(".build/debug/meshprobe").path
}

/// The executable `name` on PATH, or in the system directories PATH may leave out (`/usr/sbin` holds nghttpd and
/// HAProxy); nil when it is not installed.
public func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map(String.init) ?? []
    for dir in path + ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}
