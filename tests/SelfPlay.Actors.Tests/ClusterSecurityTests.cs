using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Cluster;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Core.Config;

namespace SelfPlay.Actors.Tests;

public sealed class ClusterSecurityTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-tls-" + Guid.NewGuid().ToString("N"));
    static readonly PersistenceConfig Store = new("sqlite", "");

    public ClusterSecurityTests() => Directory.CreateDirectory(_dir);

    /// <summary>A self-signed campaign certificate as a password-protected PKCS#12 file.</summary>
    string MakeCertificate(string name, string password)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // server and client authentication
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var path = Path.Combine(_dir, name + ".pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12, password));
        return path;
    }

    [Fact]
    public void Only_a_listener_off_loopback_warns_and_without_tls_it_says_anyone_can_send()
    {
        Assert.Empty(ClusterSecurity.ExposureWarnings("127.0.0.1", 4053, tls: false));
        Assert.Empty(ClusterSecurity.ExposureWarnings("localhost", 0, tls: false));
        Assert.Empty(ClusterSecurity.ExposureWarnings("::1", 0, tls: false));
        var open = ClusterSecurity.ExposureWarnings("0.0.0.0", 4053, tls: false);
        Assert.Equal(2, open.Count);
        Assert.Contains("0.0.0.0:4053", open[0]);
        Assert.Contains("anyone who can reach it", open[1]);
        Assert.Single(ClusterSecurity.ExposureWarnings("10.0.0.5", 4053, tls: true));
    }

    [Fact]
    public void The_system_name_is_the_campaigns_and_akka_blocks_or_bad_tls_settings_are_one_line_errors()
    {
        Assert.Equal("selfplay-game24", ClusterSecurity.SystemName(ConfigLoader.Parse(ConfigLoader.Build(null, []))));
        Assert.Equal("selfplay-a-b", ClusterSecurity.SystemName(ConfigLoader.Parse(ConfigLoader.Build(null, ["name=a.b"]))));
        Assert.Equal("mine", ClusterSecurity.SystemName(ConfigLoader.Parse(ConfigLoader.Build(null, ["cluster.system-name=mine"]))));
        Assert.Contains("system-name", Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, ["cluster.system-name=a.b"]))).Message);

        var file = Path.Combine(_dir, "campaign.conf");
        File.WriteAllText(file, "selfplay.name = x\nakka.remote.dot-netty.tcp.hostname = 0.0.0.0\n");
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Build(file, [])).Message;
        Assert.Contains("'akka' is not read", error);
        Assert.Contains("selfplay.cluster", error);
        Assert.DoesNotContain("\n", error);

        var missing = Assert.Throws<ConfigException>(() => ClusterSecurity.LoadTls(new ClusterSecurityConfig(TlsCertificate: Path.Combine(_dir, "none.pfx")))).Message;
        Assert.Contains("file not found", missing);
        var pfx = MakeCertificate("wrong-password", "right");
        Environment.SetEnvironmentVariable("SELFPLAY_TEST_TLS_WRONG", "wrong");
        Assert.Contains("cannot read", Assert.Throws<ConfigException>(() =>
            ClusterSecurity.LoadTls(new ClusterSecurityConfig(TlsCertificate: pfx, TlsPasswordEnv: "SELFPLAY_TEST_TLS_WRONG"))).Message);
        Assert.Contains("is not set", Assert.Throws<ConfigException>(() =>
            ClusterSecurity.LoadTls(new ClusterSecurityConfig(TlsCertificate: pfx, TlsPasswordEnv: "SELFPLAY_TEST_TLS_UNSET_" + Guid.NewGuid().ToString("N")))).Message);
    }

    [Fact]
    public void A_pem_certificate_with_its_key_in_the_same_or_another_file_loads_with_the_key()
    {
        using var key = RSA.Create(2048);
        using var certificate = new CertificateRequest("CN=pem", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var certPem = certificate.ExportCertificatePem();
        var keyPem = key.ExportPkcs8PrivateKeyPem();
        var both = Path.Combine(_dir, "both.pem");
        File.WriteAllText(both, certPem + "\n" + keyPem);
        var separate = Path.Combine(_dir, "cert.pem");
        File.WriteAllText(separate, certPem);
        File.WriteAllText(Path.Combine(_dir, "key.pem"), keyPem);
        Assert.True(ClusterSecurity.LoadTls(new ClusterSecurityConfig(TlsCertificate: both))!.Certificate.HasPrivateKey);
        Assert.Equal(certificate.Thumbprint, ClusterSecurity.LoadTls(new ClusterSecurityConfig(TlsCertificate: separate, TlsKey: Path.Combine(_dir, "key.pem")))!.Certificate.Thumbprint);
        Assert.Contains("cannot read", Assert.Throws<ConfigException>(() => ClusterSecurity.LoadTls(new ClusterSecurityConfig(TlsCertificate: separate))).Message);
    }

    [Fact]
    public async Task With_the_campaign_certificate_a_node_joins_and_without_it_a_node_can_neither_join_nor_deliver()
    {
        Environment.SetEnvironmentVariable("SELFPLAY_TEST_TLS_PASSWORD", "campaign-secret");
        var campaign = ClusterSecurity.LoadTls(new ClusterSecurityConfig(TlsCertificate: MakeCertificate("campaign", "campaign-secret"), TlsPasswordEnv: "SELFPLAY_TEST_TLS_PASSWORD"));
        var other = ClusterSecurity.LoadTls(new ClusterSecurityConfig(TlsCertificate: MakeCertificate("other", "campaign-secret"), TlsPasswordEnv: "SELFPLAY_TEST_TLS_PASSWORD"));
        const string name = "selfplay-tls-test";
        var nodes = new List<ActorSystem>();
        ActorSystem Node(string folder, IReadOnlyList<string> seeds, RemoteTls? tls)
        {
            var node = SelfPlayHost.CreateNode(Store, Path.Combine(_dir, folder), new NodeOptions(["replay"], seeds, SystemName: name, Tls: tls), serilog: false);
            nodes.Add(node);
            return node;
        }
        try
        {
            var seed = Node("seed", [], campaign);
            var seedAddress = Cluster.Get(seed).SelfAddress.ToString();
            var member = Node("member", [seedAddress], campaign);
            var joined = new TaskCompletionSource();
            Cluster.Get(member).RegisterOnMemberUp(() => joined.TrySetResult());
            await joined.Task.WaitAsync(TimeSpan.FromSeconds(30));

            var stranger = Node("stranger", [seedAddress], other);
            var plain = Node("plain", [seedAddress], null);
            // Neither can deliver a message to the seed either.
            foreach (var outsider in new[] { stranger, plain })
                await Assert.ThrowsAnyAsync<Exception>(() => outsider.ActorSelection($"{seedAddress}/user").ResolveOne(TimeSpan.FromSeconds(4)));
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.Equal(2, Cluster.Get(seed).State.Members.Count(m => m.Status == MemberStatus.Up));
            Assert.All(new[] { stranger, plain }, outsider => Assert.DoesNotContain(Cluster.Get(outsider).State.Members, m => m.Status == MemberStatus.Up));
            // The member holding the certificate does reach the seed.
            Assert.NotNull(await member.ActorSelection($"{seedAddress}/user").ResolveOne(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            foreach (var node in Enumerable.Reverse(nodes)) await node.Terminate();
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
