import Foundation
import NIOCore
import MeshprobeGRPC
import MeshprobeIdentity
import MeshprobeTLS

/// One `X509SVIDResponse`: the SVIDs the agent offers this workload and the bundles of other trust domains.
public struct X509SVIDUpdate: Sendable, Hashable {
    /// One SVID; its description names the ID and sizes, never the key's bytes.
    public struct SVID: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
        public var spiffeID: String
        /// Concatenated DER, leaf first.
        public var chainDER: [UInt8]
        /// PKCS#8 DER.
        public var keyDER: [UInt8]
        /// Concatenated DER CA certificates of the SVID's trust domain.
        public var bundleDER: [UInt8]
        public var hint: String

        public init(spiffeID: String, chainDER: [UInt8], keyDER: [UInt8], bundleDER: [UInt8], hint: String = "") {
            self.spiffeID = spiffeID
            self.chainDER = chainDER
            self.keyDER = keyDER
            self.bundleDER = bundleDER
            self.hint = hint
        }

        public var description: String { "\(spiffeID) (\(chainDER.count) bytes of certificates, a private key, \(bundleDER.count) bytes of bundle)" }
        public var debugDescription: String { description }
    }

    public var svids: [SVID]
    /// Concatenated DER CA certificates by trust domain (the map's keys as the agent sends them, `spiffe://td`).
    public var federatedBundles: [String: [UInt8]]

    public init(svids: [SVID], federatedBundles: [String: [UInt8]]) {
        self.svids = svids
        self.federatedBundles = federatedBundles
    }

    /// Decodes one message of the stream.
    public init(decoding message: ByteBuffer) throws(WorkloadAPIError) {
        let response: X509SVIDResponse
        do { response = try X509SVIDResponse(serializedBytes: Array(message.readableBytesView)) } catch {
            throw .badResponse("an X509SVIDResponse that does not decode (\(error))")
        }
        svids = response.svids.map {
            SVID(spiffeID: $0.spiffeID, chainDER: Array($0.x509Svid), keyDER: Array($0.x509SvidKey), bundleDER: Array($0.bundle), hint: $0.hint)
        }
        federatedBundles = response.federatedBundles.mapValues { Array($0) }
    }

    /// The SVID to present: the one with `spiffeID`, else the first (the default SVID, as the Workload API says).
    public func select(spiffeID: String?) throws(WorkloadAPIError) -> SVID {
        guard let first = svids.first else { throw .unusableSVID("the response holds no SVID") }
        guard let spiffeID else { return first }
        guard let match = svids.first(where: { $0.spiffeID == spiffeID }) else {
            throw .noSVIDWithID(requested: spiffeID, offered: svids.map(\.spiffeID))
        }
        return match
    }

    /// The chosen SVID and the bundles as TLS settings: the SVID's own bundle for its trust domain, each federated
    /// bundle for its trust domain, added to `base` (whose bundles from flags stay).
    public func apply(spiffeID: String?, to base: TLSConfiguration) throws(WorkloadAPIError) -> TLSConfiguration {
        let svid = try select(spiffeID: spiffeID)
        let id: SPIFFEID
        do { id = try SPIFFEID(parsing: svid.spiffeID) } catch {
            throw .unusableSVID("'\(PrintableText.replacingControls(svid.spiffeID))' is not a SPIFFE ID: \(error.reason)")
        }
        guard !svid.chainDER.isEmpty, !svid.keyDER.isEmpty else {
            throw .unusableSVID("\(svid.spiffeID) comes without \(svid.chainDER.isEmpty ? "a certificate chain" : "a private key")")
        }
        var configuration = base
        configuration.certificateChainFile = nil
        configuration.privateKeyFile = nil
        configuration.svidInMemory = InMemorySVID(chainDER: svid.chainDER, privateKeyDER: svid.keyDER,
                                                  source: "the Workload API's SVID \(svid.spiffeID)")
        do {
            if !svid.bundleDER.isEmpty {
                try configuration.trustBundles.add(der: svid.bundleDER, trustDomain: id.trustDomain,
                                                   source: "the Workload API's bundle of \(id.trustDomain)")
            }
            for (domain, der) in federatedBundles.sorted(by: { $0.key < $1.key }) where !der.isEmpty {
                try configuration.trustBundles.add(der: der, trustDomain: domain, source: "the Workload API's federated bundle of \(domain)")
            }
        } catch {
            throw .unusableSVID(error.message)
        }
        return configuration
    }
}
