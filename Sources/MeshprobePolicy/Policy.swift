import Foundation
import MeshprobeIdentity
import MeshprobeLoad
import MeshprobeScenario
import MeshprobeVerify
import MeshprobeYAML

/// How a response's destination is told (the name the split's weights use).
public enum DestinationRecognizer: Sendable, Equatable, CustomStringConvertible {
    /// An echo stamp: the workload's version, its workload name, or its SPIFFE identity.
    case version
    case workload
    case identity
    /// Any response header, e.g. `x-served-by`.
    case header(String)

    public var description: String {
        switch self {
        case .version: return "the echo's version stamp"
        case .workload: return "the echo's workload stamp"
        case .identity: return "the server's SPIFFE ID"
        case .header(let name): return "the \(name) header"
        }
    }

    /// The destination name of a response, before mapping; nil when the response does not say.
    public func destination(of identity: WorkloadIdentity) -> String? {
        let value: String
        switch self {
        case .version: value = identity.version
        case .workload: value = identity.workload
        case .identity: value = identity.identity
        // The load engine puts the configured identity header's value in `workload` when no echo stamp is there.
        case .header: value = identity.workload
        }
        return value.isEmpty ? nil : value
    }
}

/// A weighted split a route must show.
public struct SplitExpectation: Sendable {
    public var name: String
    public var weights: [String: Double]
    public var recognizer: DestinationRecognizer
    /// Maps what the recogniser reads to destination names (optional).
    public var mapping: [String: String]
    public var statistics: SplitTestConfiguration
}

/// A meshprobe policy file: a scenario (target, identity, load) plus what to expect.
public struct Policy {
    public static let version = "meshprobe.policy/v1"

    public var name: String
    public var file: String
    public var scenario: Scenario
    public var split: SplitExpectation

    /// Reads a policy file; errors name the file, line and field.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(YAMLInputError) -> Policy {
        var scenario = try Scenario.load(path: path, environment: environment, extraKeys: ["policy", "expect"], defaultRequests: 20_000)
        guard let expect = scenario.extras["expect"] else {
            throw YAMLInputError(file: path, line: 1, column: 1, field: "expect", message: "a policy needs an expect section (split, tolerance, ...)")
        }
        if let version = scenario.extras["policy"] {
            guard try version.string() == Self.version else { throw version.error("this meshprobe reads '\(Self.version)'") }
        }
        let f = try expect.mapping(allowed: ["name", "recognise", "map", "split", "tolerance", "falseFailRate", "missRate", "maxRequests"])
        guard let splitValue = f["split"] else { throw expect.error("expect needs a split: {destination: weight, ...}") }
        var weights: [String: Double] = [:]
        for (destination, _, at) in try splitValue.stringMapKeys() {
            weights[destination] = try at.double(minimum: 0)
        }
        if weights.isEmpty { throw splitValue.error("the split names no destination") }
        let sum = weights.values.reduce(0, +)
        guard abs(sum - 100) < 1e-9 else {
            throw splitValue.error("the weights sum to \(YAMLValue.format(sum)), not 100 (Istio's rule for route weights)")
        }
        var recognizer = DestinationRecognizer.version
        if let r = f["recognise"] {
            let text = try r.string()
            switch text {
            case "version": recognizer = .version
            case "workload": recognizer = .workload
            case "identity", "peer": recognizer = .identity
            default:
                guard text.hasPrefix("header:"), text.count > 7 else {
                    throw r.error("expected version, workload, identity, or header:NAME")
                }
                let name = String(text.dropFirst(7)).trimmingCharacters(in: .whitespaces).lowercased()
                recognizer = .header(name)
                scenario.configuration.identityHeader = name
            }
        }
        var mapping: [String: String] = [:]
        if let m = f["map"] {
            for (value, destination, at) in try m.stringMap() {
                guard weights[destination] != nil else { throw at.error("maps to '\(destination)', which the split does not name") }
                mapping[value] = destination
            }
        }
        var statistics = SplitTestConfiguration()
        func fraction(_ key: String, below limit: Double) throws(YAMLInputError) -> Double? {
            guard let v = f[key] else { return nil }
            let x = try v.double(minimum: 0, exclusive: true)
            guard x < limit else { throw v.error("must be below \(YAMLValue.format(limit)), got \(YAMLValue.format(x))") }
            return x
        }
        if let x = try fraction("tolerance", below: 0.5) { statistics.tolerance = x }
        if let x = try fraction("falseFailRate", below: 0.5) { statistics.falseFailRate = x }
        if let x = try fraction("missRate", below: 0.5) { statistics.missRate = x }
        if let v = f["maxRequests"] {
            statistics.maxSamples = try v.int(minimum: 1)
            if scenario.configuration.duration == nil { scenario.configuration.requests = statistics.maxSamples }
        }
        do {
            try statistics.validate()
        } catch {
            throw expect.error(error.description)
        }
        let name = try f["name"]?.string() ?? scenario.name ?? "split"
        let split = SplitExpectation(name: name, weights: weights, recognizer: recognizer, mapping: mapping, statistics: statistics)
        return Policy(name: scenario.name ?? name, file: path, scenario: scenario, split: split)
    }
}
