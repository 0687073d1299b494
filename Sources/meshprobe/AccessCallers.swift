import MeshprobeIdentity
import MeshprobeLoad
import MeshprobePolicy
import MeshprobeScenario
import MeshprobeSpec
import MeshprobeTLS

/// The TLS contexts of access checks' callers (a policy's `expect.access`, a game day's access steps): each trusts
/// and checks the server as the prober's context does, and presents its own SVID (the identity's own, an `identities`
/// entry's, or none for `anonymous`). Errors name the file and the entry; each entry's SVID must carry the SPIFFE ID
/// it is listed under, and `foreign`'s another trust domain than the prober's.
func accessCallers(_ checks: [AccessExpectation], identities: [CallerIdentity], identity id: ScenarioIdentity,
                   configuration: LoadConfiguration, file: String) throws -> [AccessCaller: TLSContext] {
    let cells = checks.flatMap(\.cells)
    guard cells.contains(where: { $0.caller != .plaintext }) else { return [:] }
    guard let own = configuration.tls, configuration.plan.targets.contains(where: { $0.scheme == .https }) else {
        throw CLIError.badInput("\(file): access: callers other than plaintext need an https target (callers present SVIDs over TLS)")
    }
    // Every caller trusts and checks the server as the prober does (its bundles: files or the Workload API's; its
    // expected peer, SNI, ALPN and loosening) and presents its own SVID, or none.
    func context(_ cert: String?, _ key: String?, at location: String) throws -> TLSContext {
        var c = own.configuration
        c.svidInMemory = nil
        c.certificateChainFile = cert
        c.privateKeyFile = key
        do { return try TLSContext(configuration: c) } catch { throw CLIError.badInput("\(location): \(error.message)") }
    }
    var contexts: [AccessCaller: TLSContext] = [:]
    if let mine = own.localIdentity?.description { contexts[.spiffe(mine)] = own }
    for entry in identities {
        let files = entry.tls.files()
        let tls = try context(files.cert, files.key, at: entry.location)
        guard let presented = tls.localIdentity?.description else {
            throw CLIError.badInput("\(entry.location): its certificate has no SPIFFE ID")
        }
        switch entry.caller {
        case .spiffe(let listed) where listed != presented:
            throw CLIError.badInput("\(entry.location): the SVID is \(presented), not \(listed)")
        case .foreign:
            let mine = own.localIdentity?.trustDomain
            if let mine, tls.localIdentity?.trustDomain == mine {
                throw CLIError.badInput("\(entry.location): foreign's SVID \(presented) is in the prober's own trust domain \(mine): give one of another")
            }
        default:
            break
        }
        contexts[entry.caller] = tls
    }
    if cells.contains(where: { $0.caller == .anonymous }) {
        contexts[.anonymous] = try context(nil, nil, at: "\(file): identity (as anonymous)")
    }
    for cell in cells where cell.caller != .plaintext && contexts[cell.caller] == nil {
        throw CLIError.badInput("\(cell.source): no SVID for the caller \(cell.caller): add it to identities (svidDir, or cert and key)"
            + (own.localIdentity.map { "; the identity section's own is \($0)" } ?? ""))
    }
    return contexts
}
