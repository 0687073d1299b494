import Foundation
import MeshprobeHTTP1
import MeshprobeTLS
import NIOCore
import NIOHTTP1

/// Pushes the exposition text to a Prometheus Pushgateway (`PUT URL/metrics/job/JOB`, replacing the job's group), for
/// Jobs that end before a scrape: over `http://`, or `https://` with the gateway's certificate verified as a web
/// server's (its chain against a CA bundle or the system's trust store, its names against the URL's host).
public enum PushgatewayClient {
    public struct PushError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Where a push goes and how.
    public struct Target: Sendable {
        public var url: String
        public var host: String
        public var port: Int
        /// `URL's path/metrics/job/JOB`.
        public var path: String
        /// `URL's path/-/healthy`: the certificate check's request.
        public var healthPath: String
        /// https: the client context that verifies the gateway by host name; nil for http.
        public var tls: TLSContext?
        /// `Authorization` header value (`Basic ...`), when credentials were given.
        public var authorization: String?
    }

    /// The system's CA bundle (Debian's `ca-certificates`), the default trust for an https gateway.
    public static let systemTrustStore = "/etc/ssl/certs/ca-certificates.crt"

    /// Checks the URL and job, and for https builds the TLS context: the server certificate is verified against
    /// `caFile` (PEM; default: the system trust store) and must name the URL's host (a DNS or IP SAN).
    /// `credentials` (`user:password`) are sent as HTTP basic auth.
    public static func target(url: String, job: String, caFile: String? = nil, credentials: String? = nil) throws(PushError) -> Target {
        guard let components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme),
              let host = components.host, !host.isEmpty else {
            throw PushError(description: "--pushgateway '\(url)': expected http://HOST:PORT or https://HOST:PORT (an optional path is kept as a prefix)")
        }
        guard !job.isEmpty, job.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
            throw PushError(description: "--pushgateway-job '\(job)': letters, digits, '_', '-' and '.' only")
        }
        var prefix = components.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        var target = Target(url: url, host: host, port: components.port ?? 9091, path: "\(prefix)/metrics/job/\(job)",
                            healthPath: "\(prefix)/-/healthy")
        if scheme == "https" {
            var configuration = TLSConfiguration(role: .client)
            configuration.verifyHostname = host
            configuration.applicationProtocols = ["http/1.1"]
            configuration.sessionResumption = false
            do {
                if let caFile { try configuration.trustBundles.add(pemFile: caFile, trustDomain: nil) }
                target.tls = try TLSContext(configuration: configuration)
            } catch {
                throw PushError(description: "--pushgateway-ca: \(error.message)")
            }
        } else if caFile != nil {
            throw PushError(description: "--pushgateway-ca is for an https:// Pushgateway; '\(url)' is http")
        }
        if let credentials {
            guard credentials.contains(":") else {
                throw PushError(description: "Pushgateway credentials: expected USER:PASSWORD")
            }
            if scheme == "http" {
                throw PushError(description: "Pushgateway credentials go over https only ('\(url)' is http: they would travel in the clear)")
            }
            target.authorization = "Basic " + Data(credentials.utf8).base64EncodedString()
        }
        return target
    }

    /// Connects to an https gateway and sends a harmless request (`GET prefix/-/healthy`), so that a CA or a host name
    /// that does not verify is found before a run rather than after it. Throws only when the certificate does not
    /// verify; an unreachable gateway (it may come up during the run) or any answer passes.
    public static func checkCertificate(_ target: Target, group: any EventLoopGroup, timeout: TimeAmount = .seconds(5)) async throws(PushError) {
        guard let tls = target.tls else { return }
        do {
            _ = try await HTTP1Exchange.status(.GET, host: target.host, port: target.port, path: target.healthPath, tls: tls,
                                               timeout: timeout, group: group)
        } catch let error as TLSError {
            throw PushError(description: "the Pushgateway at \(target.url): its certificate does not verify: \(error.message)")
        } catch {
            return
        }
    }

    /// Sends `text` to `url`; throws unless the gateway answers 2xx.
    public static func push(_ text: String, url: String, job: String, caFile: String? = nil, credentials: String? = nil,
                            group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)) async throws {
        try await push(text, to: try target(url: url, job: job, caFile: caFile, credentials: credentials), group: group, timeout: timeout)
    }

    /// Sends `text` to `target`; throws unless the gateway answers 2xx.
    public static func push(_ text: String, to target: Target, group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)) async throws {
        var headers: HTTPHeaders = ["content-type": "text/plain; version=0.0.4; charset=utf-8"]
        if let authorization = target.authorization { headers.add(name: "authorization", value: authorization) }
        let answer: HTTPResponseStatus
        do {
            answer = try await HTTP1Exchange.status(.PUT, host: target.host, port: target.port, path: target.path, headers: headers,
                                                    body: text, tls: target.tls, timeout: timeout, group: group)
        } catch let failure as HTTP1Exchange.Failure {
            throw PushError(description: "the Pushgateway at \(target.url): \(failure.description)")
        } catch let error as TLSError {
            throw PushError(description: "the Pushgateway at \(target.url): TLS: \(error.message)")
        } catch {
            throw PushError(description: "cannot reach the Pushgateway at \(target.url): \(error)")
        }
        guard (200..<300).contains(Int(answer.code)) else {
            throw PushError(description: "the Pushgateway at \(target.url) answered \(answer.code) \(answer.reasonPhrase)")
        }
    }
}
