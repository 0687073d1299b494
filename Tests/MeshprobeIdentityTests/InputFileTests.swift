import Foundation
import Testing
@testable import MeshprobeIdentity

@Suite struct InputFileTests {
    /// A fresh directory; the caller removes it.
    func scratch() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-input-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    func reason(_ path: String, limit: InputFile.Limit = .yaml) -> String? {
        do {
            _ = try InputFile.read(path, limit: limit)
            return nil
        } catch {
            #expect(error.path == path)
            return error.reason
        }
    }

    @Test func readsARegularFileWhole() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/policy.yaml"
        let text = String(repeating: "route: a\n", count: 20_000)  // several read chunks
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try InputFile.read(path, limit: .yaml) == Array(text.utf8))
    }

    @Test func namesCharacterDevicesInsteadOfReadingThem() {
        #expect(reason("/dev/null") == "is a character device, not a regular file")
        // /dev/zero never ends: it is refused before a byte is read.
        #expect(reason("/dev/zero", limit: .result) == "is a character device, not a regular file")
    }

    @Test func namesAFIFOWithoutWaitingForAWriter() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/pipe"
        #expect(mkfifo(path, 0o600) == 0)
        #expect(reason(path) == "is a FIFO (named pipe), not a regular file")
    }

    @Test func namesDirectoriesAndMissingFiles() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(reason(directory) == "is a directory, not a regular file")
        #expect(reason("\(directory)/missing.yaml") == "does not exist")
        #expect(reason("\(directory)/missing/policy.yaml") == "does not exist")
    }

    @Test func refusesAFileOverItsKindsLimit() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/big.json"
        try Data(repeating: UInt8(ascii: "x"), count: 11).write(to: URL(fileURLWithPath: path))
        let limit = InputFile.Limit(bytes: 10, name: "a test file")
        #expect(reason(path, limit: limit) == "is 11 bytes: a test file is at most 10 bytes")
        try Data(repeating: UInt8(ascii: "x"), count: 10).write(to: URL(fileURLWithPath: path))
        #expect(try InputFile.read(path, limit: limit).count == 10)
        #expect(InputFile.Limit.result.text == "256 MiB")
        #expect(InputFile.Limit.secret.text == "64 KiB")
    }

    @Test(.enabled(if: geteuid() != 0, "root reads any file whatever its mode"))
    func saysWhenPermissionIsDenied() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/key.pem"
        try "secret".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: path)
        #expect(reason(path)?.hasPrefix("cannot be read: permission denied") == true)
    }
}
