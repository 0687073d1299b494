import MeshprobeYAML

/// The workload behind the target's service, as far as the manifests show it: its namespace, the pods' labels,
/// annotations and named ports, and the port a service port sends to.
///
/// The pods are those of each workload manifest (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Argo Rollout,
/// Pod) in the service's namespace whose labels the Service's `selector` selects; without such manifests only the
/// selector's labels are known, and without a Service the pods are taken to be labelled `app: NAME` (the convention
/// Istio's and Linkerd's examples follow), with more labels unknown. A selector on another label is then unknown,
/// and the cells it decides are not checked.
struct TargetWorkload {
    struct Pods {
        /// `Deployment reviews-v1`, `the pods Service reviews selects`.
        var name: String
        var labels: [String: String]
        /// True when the labels are all the pods have (a workload manifest's template).
        var complete: Bool
        var annotations: [String: String] = [:]
        var annotationsSource: String?
        /// Container ports by name.
        var ports: [String: Int] = [:]
    }

    struct ServicePort {
        var port: Int
        var target: Target
        /// The port's `name` and `appProtocol`, which tell Istio its protocol.
        var name: String?
        var appProtocol: String?
        enum Target { case number(Int), name(String) }
    }

    /// A port's protocol as Istio reads a Service (Istio docs: ops/configuration/traffic-management/protocol-selection):
    /// `appProtocol`, else the name's prefix (`http-web`), else detected from the first bytes.
    enum PortProtocol: Equatable {
        case http, tcp, detected
        /// No Service port in the manifests says.
        case unknown
    }

    /// The service's name; nil when nothing names it.
    var service: String?
    /// The namespace policies must be in (or the root namespace); nil when unknown (every namespace then matches).
    var namespace: String?
    var pods: [Pods] = []
    /// The target Service's ports; nil without a Service manifest (a policy's port is then the port dialed).
    var servicePorts: [ServicePort]?
    var serviceSource: String?
    /// The namespace's annotations, from a Namespace manifest, and where.
    var namespaceAnnotations: [String: String] = [:]
    var namespaceSource: String?
    /// What was assumed, in words, for the notes.
    var assumptions: [String] = []

    static let workloadKinds: Set<String> = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Rollout", "Pod"]

    init(documents: [YAMLValue], service given: ServiceHost?) throws(YAMLInputError) {
        var host = given
        var services: [YAMLValue] = []
        for d in documents where try d["kind"]?.string() == "Service" { services.append(d) }
        if host == nil, services.count == 1, let only = services.first, let name = try only["metadata"]?["name"]?.name() {
            host = ServiceHost(name, namespace: try only["metadata"]?["namespace"]?.name())
        }
        service = host?.name
        namespace = host?.namespace
        guard let name = host?.name else {
            assumptions.append("the target's service is not known (an address, and no service: in the policy): selectors cannot be resolved")
            return
        }
        var selector = LabelSelector(matchLabels: ["app": name])
        var selectorKnown = false
        for document in services {
            let ref = try ManifestName(document, kind: "Service")
            guard ref.name == name, isTargetNamespace(ref.namespace) else { continue }
            if namespace == nil { namespace = ref.namespace }
            serviceSource = ref.source
            let labels = try document["spec"]?["selector"].map { s throws(YAMLInputError) in try s.stringMap() } ?? []
            selector = LabelSelector(matchLabels: Dictionary(labels.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }))
            selectorKnown = true
            servicePorts = try (document["spec"]?["ports"]?.list() ?? []).map { p throws(YAMLInputError) in
                guard let port = try p["port"]?.int(minimum: 1) else { throw p.error("a Service port needs port") }
                let text = try p["targetPort"]?.string() ?? String(port)
                return ServicePort(port: port, target: Int(text).map { .number($0) } ?? .name(text),
                                   name: try p["name"]?.string(), appProtocol: try p["appProtocol"]?.string())
            }
            break
        }
        if !selectorKnown {
            assumptions.append("no Service \(name) in the manifests: its pods are taken to be labelled app: \(name), and a policy's port to be the port dialed")
        }
        for document in documents {
            let kind = try document["kind"]?.string() ?? ""
            if kind == "Namespace", let ns = try document["metadata"]?["name"]?.name(), ns == namespace {
                namespaceAnnotations = try annotations(document["metadata"])
                namespaceSource = try ManifestName(document, kind: kind).source
            }
            guard Self.workloadKinds.contains(kind) else { continue }
            let ref = try ManifestName(document, kind: kind)
            guard isTargetNamespace(ref.namespace) else { continue }
            let template = kind == "Pod" ? document : document["spec"]?["template"]
            let labels = Dictionary(try template?["metadata"]?["labels"].map { l throws(YAMLInputError) in try l.stringMap() }?
                .map { ($0.key, $0.value) } ?? [], uniquingKeysWith: { a, _ in a })
            guard !selector.isEmpty, selector.selects(labels, complete: true, pods: ref.resource) == .yes else { continue }
            var ports: [String: Int] = [:]
            for container in try template?["spec"]?["containers"]?.list() ?? [] {
                for p in try container["ports"]?.list() ?? [] {
                    if let portName = try p["name"]?.string(), let number = try p["containerPort"]?.int(minimum: 1) { ports[portName] = number }
                }
            }
            pods.append(Pods(name: ref.resource, labels: labels, complete: true, annotations: try annotations(template?["metadata"]),
                             annotationsSource: ref.source, ports: ports))
        }
        if pods.isEmpty {
            let what = selectorKnown ? "the pods Service \(name) selects" : "the pods labelled app: \(name)"
            pods = [Pods(name: what, labels: selector.matchLabels, complete: false)]
        }
    }

    private func annotations(_ metadata: YAMLValue?) throws(YAMLInputError) -> [String: String] {
        guard let a = metadata?["annotations"] else { return [:] }
        return Dictionary(try a.stringMap().map { ($0.key, $0.value) }, uniquingKeysWith: { x, _ in x })
    }

    /// A manifest in `other` (nil: written without one, so applied in the target's) is in the target's namespace;
    /// an unknown target namespace matches every namespace (as `ServiceHost` compares hosts).
    func isTargetNamespace(_ other: String?) -> Bool {
        guard let namespace, let other else { return true }
        return namespace == other
    }

    /// Whether `selector` selects the target's pods: yes or no when every workload agrees, else unknown, naming them.
    func selects(_ selector: LabelSelector) -> Truth {
        guard !pods.isEmpty else { return .unknown("the target's workload is not known: set service: NAME.NAMESPACE in the policy") }
        let each = pods.map { ($0.name, selector.selects($0.labels, complete: $0.complete, pods: $0.name)) }
        if let unknown = each.first(where: { $0.1.reason != nil }) { return unknown.1 }
        if each.allSatisfy({ $0.1 == .yes }) { return .yes }
        if each.allSatisfy({ $0.1 == .no }) { return .no }
        let chosen = each.filter { $0.1 == .yes }.map(\.0), left = each.filter { $0.1 == .no }.map(\.0)
        return .unknown("\(selector) selects \(chosen.joined(separator: ", ")) but not \(left.joined(separator: ", ")): the decision depends on which pod answers")
    }

    /// The pods' port a connection to `dialed` reaches: the Service's `targetPort` (a named one through the pods'
    /// container ports), else the port dialed (no Service, or the port is not the Service's: a pod dialed directly).
    func workloadPort(dialed: Int?) -> (port: Int?, why: String) {
        guard let dialed else { return (nil, "the port dialed is not known") }
        guard let servicePorts, let entry = servicePorts.first(where: { $0.port == dialed }) else { return (dialed, "") }
        switch entry.target {
        case .number(let n): return (n, "")
        case .name(let portName):
            let numbers = Set(pods.compactMap { $0.ports[portName] })
            if numbers.count == 1, let n = numbers.first, pods.allSatisfy({ $0.complete }) { return (n, "") }
            return (nil, "Service \(service ?? "")'s port \(dialed) targets the container port named \(portName), which the manifests do not number (give the Deployment)")
        }
    }

    /// The protocol of the Service port `dialed`, as Istio reads it.
    func portProtocol(dialed: Int?) -> (PortProtocol, String) {
        guard let entry = servicePorts?.first(where: { $0.port == dialed }) else {
            return (.unknown, "no Service \(service ?? "") port \(dialed.map(String.init) ?? "") in the manifests declares the port's protocol")
        }
        let http: Set<String> = ["http", "http2", "grpc", "grpc-web", "kubernetes.io/h2c"]
        let tcp: Set<String> = ["tcp", "tls", "https", "mongo", "mysql", "redis", "udp"]
        let declared = entry.appProtocol?.lowercased() ?? entry.name.map { String($0.lowercased().prefix { $0 != "-" }) } ?? ""
        let words = "Service \(service ?? "") port \(entry.port) (\(entry.appProtocol.map { "appProtocol \($0)" } ?? "name \(entry.name ?? "none")"))"
        if http.contains(declared) { return (.http, words) }
        if tcp.contains(declared) { return (.tcp, words) }
        return (.detected, words)
    }

    /// Whether the pods' port named `name` is `port`: by the containers' ports, or the Service's named `targetPort`.
    func port(named name: String, is port: Int?, dialed: Int?) -> Truth {
        let numbers = Set(pods.compactMap { $0.ports[name] })
        if let port, !numbers.isEmpty, pods.allSatisfy({ $0.complete }) { return Truth(numbers == [port]) }
        if let dialed, let entry = servicePorts?.first(where: { $0.port == dialed }), case .name(let targeted) = entry.target, targeted == name {
            return .yes
        }
        return .unknown("which container port is named \(name) is not known from the manifests (give the Deployment)")
    }

    /// A pod annotation when every workload has the same value (nil when none has it), else unknown.
    func podAnnotation(_ key: String) -> (value: String?, source: String?, unknown: String?) {
        let values = pods.map { $0.annotations[key] }
        guard let first = values.first else { return (nil, nil, nil) }
        guard values.allSatisfy({ $0 == first }) else {
            return (nil, nil, "the workloads behind the service set \(key) differently: the decision depends on which pod answers")
        }
        return (first, pods.first?.annotationsSource, nil)
    }
}
