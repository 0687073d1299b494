import MeshprobeSpec
import MeshprobeYAML

/// Where an access check sends: the target's service (its workload is what the manifests' policies are matched
/// to), its URL and the policy's request headers, from which each cell's port, authority and headers follow as the
/// check sends them (`AccessCell.sent`).
public struct AccessTarget: Sendable {
    public var service: ServiceHost?
    public var url: LoadTarget?
    public var headers: [HTTP2HeaderPair]

    public init(service: ServiceHost?, url: LoadTarget?, headers: [HTTP2HeaderPair] = []) {
        self.service = service
        self.url = url
        self.headers = headers
    }
}

/// Decides the access matrix's open cells from the mesh's authorization manifests: Istio's AuthorizationPolicy and
/// PeerAuthentication (`IstioAccess`), or Linkerd's Server, AuthorizationPolicy, MeshTLSAuthentication,
/// NetworkAuthentication, ServerAuthorization, inbound HTTPRoutes and default-policy annotations (`LinkerdAccess`),
/// for the target's workload (`TargetWorkload`).
///
/// Each open cell gets a decision and the resource that made it (`FILE:LINE KIND NAMESPACE/NAME: why`), or, when it
/// depends on something the manifests or this prober cannot show (a JWT, an external authorizer, the prober's
/// address, a label no manifest gives), `notChecked` with why: never a guess. Features that can decide no cell here
/// are listed in `AccessExpectation.notChecked`; manifests for other workloads, and what was assumed, are notes.
public enum AccessImporter {
    enum Mesh { case istio, linkerd }

    /// The mesh whose authorization `document` is; nil for any other document.
    static func mesh(of document: YAMLValue) throws(YAMLInputError) -> Mesh? {
        let kind = try document["kind"]?.string() ?? ""
        let apiVersion = try document["apiVersion"]?.string() ?? ""
        if apiVersion.hasPrefix("security.istio.io/"), IstioAccess.kinds.contains(kind) { return .istio }
        if apiVersion.hasPrefix("policy.linkerd.io/"), LinkerdAccess.kinds.contains(kind) { return .linkerd }
        return nil
    }

    /// The kinds read for the target's workload besides the meshes' own (`TargetWorkload`).
    public static let contextKinds: Set<String> = TargetWorkload.workloadKinds.union(["Service", "Namespace"])

    /// True for a document this importer reads (the route importer leaves them to it).
    public static func isAuthorization(_ document: YAMLValue) throws(YAMLInputError) -> Bool {
        try mesh(of: document) != nil
    }

    /// An HTTPRoute parented by a Linkerd Server: an inbound route for authorization.
    static func isInboundRoute(_ document: YAMLValue) throws(YAMLInputError) -> Bool {
        let kind = try document["kind"]?.string()
        guard kind == "HTTPRoute" || kind == "GRPCRoute" else { return false }
        for parent in try document["spec"]?["parentRefs"]?.list() ?? [] where try parent["kind"]?.string() == "Server" { return true }
        return false
    }

    /// Notes for the authorization manifests when the policy has no `expect.access`: nothing checks them.
    public static func unchecked(_ documents: [YAMLValue]) throws(YAMLInputError) -> [String] {
        var out: [String] = []
        for d in documents where try isAuthorization(d) {
            let ref = try ManifestName(d, kind: d["kind"]?.string() ?? "")
            out.append("\(ref.file):\(ref.line): not checked: \(ref.resource): the policy declares no expect.access")
        }
        return out
    }

    /// Fills `expected` and `source`, or `notChecked`, of every cell of `access` no rule decided, from the
    /// authorization manifests among `documents`; appends to `access.notChecked` each manifest feature that cannot be
    /// checked, and passes notes (other workloads' manifests, assumptions) to `notes`. Without authorization
    /// manifests the cells stay open (`checkDecided` then names them); Istio's and Linkerd's together are bad input.
    public static func decide(_ access: inout AccessExpectation, documents: [YAMLValue], target: AccessTarget,
                              notes: (String) -> Void) throws(YAMLInputError) {
        var istio: [YAMLValue] = [], linkerd: [YAMLValue] = [], routes: [YAMLValue] = []  // routes: Linkerd Servers' inbound routes
        for document in documents {
            switch try mesh(of: document) {
            case .istio: istio.append(document)
            case .linkerd: linkerd.append(document)
            case nil: if try isInboundRoute(document) { routes.append(document) }
            }
        }
        linkerd += routes
        guard !istio.isEmpty || !linkerd.isEmpty else {
            notes("no authorization manifest (Istio AuthorizationPolicy or PeerAuthentication, Linkerd Server, AuthorizationPolicy or ServerAuthorization) among the manifests: expect.access's open cells stay open")
            return
        }
        if let first = istio.first, let other = linkerd.first {
            throw other.error("the manifests hold Istio's authorization (\(first.file):\(first.line)) and Linkerd's: a workload is in one mesh; give that mesh's")
        }
        let workload = try TargetWorkload(documents: documents, service: target.service)
        var found: [String] = [], skipped: [String] = []
        let decideCell: (AccessCell) -> AccessVerdict
        let callers = Set(access.cells.map(\.caller))
        if !istio.isEmpty {
            let mesh = try IstioAccess(documents: istio, workload: workload, notes: &found, skipped: &skipped)
            decideCell = { cell in
                let f = facts(cell, target: target, workload: workload)
                let (portProtocol, words) = workload.portProtocol(dialed: f.dialed)
                return mesh.decide(cell.caller, IstioAccess.Facts(
                    spiffeID: { if case .spiffe(let id) = cell.caller { id } else { nil } }(), method: cell.request.method, path: f.path,
                    headers: f.headers, port: f.port, portUnknown: f.portUnknown, authority: f.authority,
                    portProtocol: portProtocol, protocolWords: words, meshALPN: target.url?.meshALPN == .istio))
            }
        } else {
            let mesh = try LinkerdAccess(documents: linkerd, workload: workload, notes: &found, skipped: &skipped)
            if callers.contains(where: { $0 != .plaintext }) {
                found.append("Linkerd: TLS callers are judged as mesh TLS, which the proxy terminates only when the prober's SNI is its identity (identity.sni: SA.NS.serviceaccount.identity.linkerd.cluster.local); otherwise it passes the TLS through unauthenticated")
            }
            decideCell = { cell in
                let f = facts(cell, target: target, workload: workload)
                return mesh.decide(cell.caller, LinkerdAccess.Facts(
                    method: cell.request.method, path: f.path, query: f.query, headers: f.headers, port: f.port,
                    portUnknown: f.portUnknown, dialed: f.dialed, authority: f.authority))
            }
        }
        if callers.contains(.foreign) {
            found.append("foreign: judged refused at the TLS handshake where the mesh terminates TLS: the mesh is taken to trust no other trust domain (federation is mesh configuration, not in these manifests)")
        }
        for note in workload.assumptions + found { notes(note) }
        for i in access.cells.indices where access.cells[i].expected == nil && access.cells[i].notChecked == nil {
            switch decideCell(access.cells[i]) {
            case .decided(let decision, let source):
                access.cells[i].expected = decision
                access.cells[i].source = source
            case .open(let why):
                access.cells[i].notChecked = why
            }
        }
        for item in skipped where !access.notChecked.contains(item) { access.notChecked.append(item) }
    }

    /// What a try of `cell` shows the mesh: its path and query, headers, the port dialed and the pods' port, and the
    /// authority (a `host` header's when the request sets one).
    static func facts(_ cell: AccessCell, target: AccessTarget, workload: TargetWorkload)
        -> (path: String, query: [(String, String)], headers: [String: String], dialed: Int?, port: Int?, portUnknown: String, authority: String?) {
        let sent = target.url.map { cell.sent(to: $0, headers: target.headers) }
        var headers: [String: String] = [:]
        for h in sent?.headers ?? cell.request.headers.map({ HTTP2HeaderPair($0.key, $0.value) }) { headers[h.name] = h.value }
        let full = cell.request.path
        let path = String(full.prefix { $0 != "?" && $0 != "#" })
        var query: [(String, String)] = []
        if let q = full.split(separator: "?", maxSplits: 1).dropFirst().first {
            for item in q.prefix(while: { $0 != "#" }).split(separator: "&") {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                query.append((pair[0], pair.count > 1 ? pair[1] : ""))
            }
        }
        let dialed = sent?.target.port ?? cell.request.port
        let (port, why) = workload.workloadPort(dialed: dialed)
        return (path, query, headers, dialed, port, why, headers["host"] ?? sent?.target.authority)
    }
}
