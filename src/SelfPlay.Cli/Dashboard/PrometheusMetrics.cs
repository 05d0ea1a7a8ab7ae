using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SelfPlay.Actors.Hosting;

namespace SelfPlay.Cli.Dashboard;

/// <summary>
/// <c>--metrics-port N</c> (run, node): GET /metrics on 127.0.0.1 in Prometheus' text format (0.0.4), from the
/// SelfPlay meter (<see cref="SelfPlayMetrics"/>) through a MeterListener: counters as NAME_total sums, gauges as
/// their value at the scrape.
/// </summary>
public sealed class PrometheusMetrics : IDisposable
{
    readonly MeterListener _listener = new();
    readonly ConcurrentDictionary<Instrument, double> _values = new();

    public PrometheusMetrics()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == SelfPlayMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => Record(instrument, value));
        _listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => Record(instrument, value));
        _listener.Start();
    }

    void Record(Instrument instrument, double value)
    {
        if (instrument is Counter<long> or Counter<double>) _values.AddOrUpdate(instrument, value, (_, sum) => sum + value);
        else _values[instrument] = value; // a gauge: its latest observation
    }

    /// <summary>The exposition text: every SelfPlay instrument seen so far.</summary>
    public string Scrape()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var (instrument, value) in _values.OrderBy(kv => kv.Key.Name, StringComparer.Ordinal))
        {
            var counter = instrument is Counter<long> or Counter<double>;
            var name = instrument.Name.Replace('.', '_') + (counter ? "_total" : "");
            text.Append($"# HELP {name} {instrument.Description}\n# TYPE {name} {(counter ? "counter" : "gauge")}\n");
            text.Append($"{name} {value.ToString("G17", CultureInfo.InvariantCulture)}\n");
        }
        return text.ToString();
    }

    /// <summary>Serves /metrics on 127.0.0.1:<paramref name="port"/> (0: a free port) and prints the address.</summary>
    public async Task<WebApplication> StartAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        app.MapGet("/metrics", () => Results.Text(Scrape(), "text/plain; version=0.0.4", Encoding.UTF8));
        await app.StartAsync();
        Console.WriteLine($"metrics on {string.Join(" ", app.Urls)}/metrics");
        return app;
    }

    public void Dispose() => _listener.Dispose();
}
