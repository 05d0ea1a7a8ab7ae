using System.Net;

namespace SelfPlay.Cli;

/// <summary>What the commands that serve HTTP until stopped (serve, dashboard) share.</summary>
public static class HttpCommand
{
    public static bool IsLoopback(string host) => host == "localhost" || IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip);

    /// <summary>Completes on Ctrl-C or when the process is asked to exit (SIGTERM).</summary>
    public static Task StopRequested()
    {
        var stop = new TaskCompletionSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.TrySetResult(); };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.TrySetResult();
        return stop.Task;
    }
}
