import MeshprobePolicy

/// The rules that make one policy of a policy file and the mesh manifests given with it (`verify FILE
/// MANIFEST...`): the routes and the resilience settings come from the manifests; the target, identity, load and
/// statistics (and the workloads outlier detection makes fail) from the policy.
package enum ManifestMerge {
    /// Reads `manifests` and merges what they declare into `policy`, which must declare no routes of its own
    /// (`policyFile` names it when it does): the routes and resilience settings, and, when the policy has
    /// `expect.access`, the decisions of its open cells from the authorization manifests (`AccessImporter`). Every note
    /// is passed to `note` as it is reached.
    package static func importManifests(_ manifests: [String], into policy: inout Policy, policyFile: String,
                                        note: (String) -> Void) throws {
        if !policy.routes.isEmpty {
            throw ExitError.badInput("\(policyFile): the routes come from the manifests: leave split and routes out of expect")
        }
        let documents = try ManifestImporter.documents(files: manifests)
        let imported = try ManifestImporter.importRoutes(documents: documents, files: manifests, recognizer: policy.recognizer,
                                                         statistics: policy.statistics, service: policy.targetService, forAccess: policy.access != nil)
        if var access = policy.access {
            try AccessImporter.decide(&access, documents: documents,
                                      target: AccessTarget(service: policy.targetService ?? imported.service, url: policy.scenario.plan.targets.first,
                                                           headers: policy.scenario.plan.headers),
                                      notes: note)
            policy.access = access
        } else {
            for text in try AccessImporter.unchecked(documents) { note(text) }
        }
        try merge(imported, into: &policy, manifests: manifests, note: note)
    }

    /// Merges `imported` into `policy`: the resilience settings are added to the policy's own; outlier detection is
    /// checked only with the policy's `expect.outlierDetection.faultTargets` (else a note says it is not), at the
    /// policy's rate; the routes replace the policy's, with its mapping and routing. Nothing to check is bad input.
    package static func merge(_ imported: ImportedRoutes, into policy: inout Policy, manifests: [String],
                              note: (String) -> Void) throws(ExitError) {
        for text in imported.notes { note(text) }
        policy.circuitBreakers += imported.circuitBreakers
        policy.connectionReuse += imported.connectionReuse
        policy.maxRetries += imported.maxRetries
        for var declared in imported.outlierDetections {
            guard let probe = policy.outlierProbe else {
                note("\(declared.source): outlier detection is not verified: give expect.outlierDetection.faultTargets (the workloads to make fail)")
                continue
            }
            declared.faultTargets = probe.faultTargets
            declared.rate = probe.rate
            policy.outlierDetections.append(declared)
        }
        policy.retries += imported.retries
        guard !imported.routes.isEmpty || !imported.circuitBreakers.isEmpty || !policy.outlierDetections.isEmpty
                || !imported.retries.isEmpty || !imported.connectionReuse.isEmpty || !imported.maxRetries.isEmpty || policy.access != nil else {
            throw ExitError.badInput("nothing to check in \(manifests.joined(separator: ", ")): no http route, connection pool, outlier detection or retries")
        }
        policy.routes = imported.routes.map { route in
            var r = route
            r.mapping = policy.mapping
            r.routing = policy.routing
            return r
        }
    }

    /// Removes the resilience procedures from `policy` (`--routes-only`); returns one note for each, saying it is not
    /// checked.
    package static func skipProcedures(_ policy: inout Policy) -> [String] {
        let skipped = policy.circuitBreakers.map { "\($0.source): circuit breaker" }
            + policy.maxRetries.map { "\($0.source): maxRetries" }
            + policy.connectionReuse.map { "\($0.source): maxRequestsPerConnection" }
            + policy.retries.map { "\($0.source): retries and timeouts" }
            + policy.outlierDetections.map { "\($0.source): outlier detection" }
        policy.circuitBreakers = []
        policy.maxRetries = []
        policy.connectionReuse = []
        policy.retries = []
        policy.outlierDetections = []
        return skipped.map { "not checked (--routes-only): \($0)" }
    }
}
