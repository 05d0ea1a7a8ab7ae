using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace SelfPlay.Integration.Tests;

/// <summary>A `selfplay` child process that keeps running while the test watches its output, and can be killed (SIGKILL).</summary>
public sealed class CliProcess : IAsyncDisposable
{
    readonly Process _process;
    readonly StringBuilder _output = new();
    readonly object _gate = new();

    public string Name { get; }
    public int Pid => _process.Id;

    CliProcess(string name, Process process) => (Name, _process) = (name, process);

    public static CliProcess Start(string name, params string[] args) => Start(name, new Dictionary<string, string>(), args);

    /// <summary>With extra environment variables (e.g. a secret the command reads by name).</summary>
    public static CliProcess Start(string name, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = CliRunner.RepoRoot };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "selfplay.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        var process = new Process { StartInfo = start };
        var cli = new CliProcess(name, process);
        process.OutputDataReceived += (_, e) => cli.Append(e.Data);
        process.ErrorDataReceived += (_, e) => cli.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return cli;
    }

    void Append(string? line)
    {
        if (line is null) return;
        lock (_gate) _output.AppendLine(line);
    }

    public string Output
    {
        get { lock (_gate) return _output.ToString(); }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits until the output matches; fails with the output so far when the process ends or time runs out.</summary>
    public async Task<Match> WaitForAsync(string pattern, TimeSpan timeout)
    {
        var regex = new Regex(pattern, RegexOptions.Multiline);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var m = regex.Match(Output);
            if (m.Success) return m;
            if (_process.HasExited && !regex.IsMatch(Output))
                throw new Xunit.Sdk.XunitException($"{Name} exited ({_process.ExitCode}) before /{pattern}/:\n{Output}");
            if (clock.Elapsed > timeout) throw new Xunit.Sdk.XunitException($"{Name}: no /{pattern}/ within {timeout.TotalSeconds} s:\n{Output}");
            await Task.Delay(100);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(cancel.Token); }
        catch (OperationCanceledException) { throw new Xunit.Sdk.XunitException($"{Name} still running after {timeout.TotalSeconds} s:\n{Output}"); }
        _process.WaitForExit(); // drains the output
        return _process.ExitCode;
    }

    /// <summary>kill -9: no shutdown, no leaving the cluster.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
