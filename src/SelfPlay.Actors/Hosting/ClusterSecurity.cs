using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Remote.Transport.DotNetty;
using SelfPlay.Actors.Configuration;
using SelfPlay.Core.Config;

namespace SelfPlay.Actors.Hosting;

/// <summary>The campaign's certificate, loaded with its private key.</summary>
public sealed record RemoteTls(X509Certificate2 Certificate);

/// <summary>
/// Who may talk to a node: the campaign-specific actor-system name, mutual TLS pinned to the campaign's certificate, and
/// the warnings a listener prints when it is reachable from other machines.
/// </summary>
public static class ClusterSecurity
{
    /// <summary>"selfplay-" + the campaign name unless cluster.system-name says otherwise (Akka allows no dots).</summary>
    public static string SystemName(CampaignConfig config) =>
        config.Security.SystemName.Length > 0 ? config.Security.SystemName : "selfplay-" + config.Name.Replace('.', '-');

    /// <summary>The certificate of cluster.tls, or null without one; a file that cannot be used is a one-line error.</summary>
    public static RemoteTls? LoadTls(ClusterSecurityConfig security)
    {
        if (security.TlsCertificate.Length == 0) return null;
        var path = security.TlsCertificate;
        if (!File.Exists(path)) throw new ConfigException($"selfplay.cluster.tls.certificate: file not found: {path}");
        if (security.TlsKey.Length > 0 && !File.Exists(security.TlsKey)) throw new ConfigException($"selfplay.cluster.tls.key: file not found: {security.TlsKey}");
        string? password = null;
        if (security.TlsPasswordEnv.Length > 0)
            password = Environment.GetEnvironmentVariable(security.TlsPasswordEnv)
                ?? throw new ConfigException($"selfplay.cluster.tls.password-env names {security.TlsPasswordEnv}, which is not set");
        X509Certificate2 certificate;
        try
        {
            if (LooksLikePem(path))
            {
                // Re-imported as PKCS#12: TLS servers on Linux need a key that the certificate owns.
                using var pem = X509Certificate2.CreateFromPemFile(path, security.TlsKey.Length > 0 ? security.TlsKey : null);
                certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            }
            else certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (CryptographicException e)
        {
            throw new ConfigException($"selfplay.cluster.tls.certificate: cannot read {path}: {e.Message.ReplaceLineEndings(" ")}");
        }
        if (!certificate.HasPrivateKey) throw new ConfigException($"selfplay.cluster.tls.certificate: {path} holds no private key (give it in the file or in cluster.tls.key)");
        return new RemoteTls(certificate);
    }

    static bool LooksLikePem(string path)
    {
        using var reader = new StreamReader(path);
        var head = new char[64];
        var n = reader.Read(head, 0, head.Length);
        return new string(head, 0, n).TrimStart().StartsWith("-----BEGIN", StringComparison.Ordinal);
    }

    /// <summary>
    /// Mutual TLS: both ends present the campaign's certificate and accept only that certificate (pinned by thumbprint),
    /// whatever certificate authority signed it, so a self-signed campaign certificate works and nothing else does.
    /// </summary>
    public static DotNettySslSetup SslSetup(RemoteTls tls) =>
        new(tls.Certificate, suppressValidation: false, requireMutualAuthentication: true,
            CertificateValidation.PinnedCertificate(tls.Certificate.Thumbprint));

    public static bool IsLoopback(string hostname) =>
        hostname.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(hostname, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>What a listener on <paramref name="hostname"/> tells its user: nothing on loopback; that it is reachable
    /// from other machines otherwise; and without TLS, that whoever reaches it can join and send messages.</summary>
    public static IReadOnlyList<string> ExposureWarnings(string hostname, int port, bool tls)
    {
        if (IsLoopback(hostname)) return [];
        var warnings = new List<string> { $"listening on {hostname}:{(port == 0 ? "a free port" : port)}, reachable from other machines" };
        if (!tls)
            warnings.Add("without selfplay.cluster.tls.certificate this port accepts messages from anyone who can reach it: any peer can join the cluster with any role and run work on it; set a campaign certificate or keep it on a private network");
        return warnings;
    }
}
