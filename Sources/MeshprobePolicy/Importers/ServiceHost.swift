/// A mesh service as targets and manifests name it: `reviews`, `reviews.bookinfo` or
/// `reviews.bookinfo.svc.cluster.local` (any cluster domain); any other host (`api.example.com`) is compared whole.
///
/// A short name in a manifest is in the manifest's own namespace (Istio's rule); a namespace that is unknown on
/// either side does not tell two services apart.
public struct ServiceHost: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var namespace: String?
    /// A host that is not a cluster service name, compared whole.
    var external: String?

    public init(_ host: String, namespace defaultNamespace: String? = nil) {
        var text = host.lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1: (name, namespace, external) = (text, defaultNamespace, nil)
        case 2: (name, namespace, external) = (parts[0], parts[1], nil)
        default:
            if parts[2] == "svc" {
                (name, namespace, external) = (parts[0], parts[1], nil)
            } else {
                (name, namespace, external) = (text, nil, text)
            }
        }
    }

    public var description: String {
        if let external { return external }
        return namespace.map { "\(name).\($0)" } ?? name
    }

    /// True when `host` (a VirtualService's `hosts` entry, a DestinationRule's `host`), read in `namespace`, names this
    /// service: the same name and namespace, or a wildcard (`*`, `*.bookinfo.svc.cluster.local`) that covers it.
    public func isNamed(by host: String, in namespace: String?) -> Bool {
        let lowered = host.lowercased()
        if lowered == "*" { return true }
        if lowered.hasPrefix("*.") {
            let suffix = String(lowered.dropFirst(1))
            if let external { return external.hasSuffix(suffix) }
            // Without a namespace, a namespaced wildcard cannot be told from this service's: taken as covering it.
            guard let ns = self.namespace else { return true }
            return "\(name).\(ns).svc.cluster.local".hasSuffix(suffix) || suffix.hasPrefix(".\(ns).svc.")
        }
        let other = ServiceHost(lowered, namespace: namespace)
        if external != nil || other.external != nil { return external == other.external }
        guard name == other.name else { return false }
        guard let a = self.namespace, let b = other.namespace else { return true }
        return a == b
    }
}
