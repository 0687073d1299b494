import Foundation
import Testing

@testable import MeshprobeReport

/// Where a result's path leads: this process's descriptors are written as they are, links stay links, special files
/// are written into; only a regular file is replaced.
@Suite struct ReportFileTests {
    func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshprobe-reportfile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func thisProcesssDescriptorsAreWrittenAsTheyAre() {
        #expect(ReportFile.destination("-") == .descriptor(1))
        #expect(ReportFile.destination("/dev/stdout") == .descriptor(1))
        #expect(ReportFile.destination("/dev/stderr") == .descriptor(2))
        #expect(ReportFile.destination("/dev/fd/1") == .descriptor(1))
        #expect(ReportFile.destination("/proc/self/fd/2") == .descriptor(2))
        #expect(ReportFile.destination("/proc/\(getpid())/fd/1") == .descriptor(1))
        #expect(ReportFile.writesStandardOutput("/dev/stdout") && ReportFile.writesStandardOutput("-"))
    }

    @Test func aLinkStaysALinkAndItsTargetIsReplaced() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("old".utf8).write(to: URL(fileURLWithPath: "\(dir)/real.json"))
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/link.json", withDestinationPath: "real.json")
        #expect(ReportFile.destination("\(dir)/link.json") == .replace("\(dir)/real.json"))
        try ReportFile.checkWritable("\(dir)/link.json", flag: "--json")
        try ReportFile.write("new", to: "\(dir)/link.json", flag: "--json")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/link.json") == "real.json")
        #expect(try String(contentsOfFile: "\(dir)/real.json", encoding: .utf8) == "new")
    }

    @Test func aLinkToThisProcesssStandardOutputIsTheDescriptor() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/out", withDestinationPath: "/dev/stdout")
        #expect(ReportFile.destination("\(dir)/out") == .descriptor(1))
    }

    @Test func aFIFOIsWrittenIntoAndAMissingFileReplaced() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo("\(dir)/f", 0o600) == 0)
        #expect(ReportFile.destination("\(dir)/f") == .inPlace("\(dir)/f"))
        #expect(ReportFile.destination("\(dir)/new.json") == .replace("\(dir)/new.json"))
        #expect(throws: ReportFileError.self) { try ReportFile.checkWritable("\(dir)/missing/new.json", flag: "--json") }
    }
}
