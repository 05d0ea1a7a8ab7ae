using System.Collections.Concurrent;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;
using TorchSharp;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Models.Generation;

/// <summary>A model name that the engine does not serve (never loaded, or unloaded).</summary>
public sealed class UnknownModelException(string name) : Exception($"The model '{name}' does not exist.")
{
    public string Name { get; } = name;
}

/// <summary>
/// Generation for concurrent callers (the HTTP server): one thread owns every model, so tensor work, dispose scopes
/// and prefix caches stay on it. Requests queued while a batch runs form the next batch, per model, through the
/// same <see cref="Sampler"/> and <see cref="PrefixCache"/> as the campaign's inference actor. A base model and LoRA
/// adapters in the PEFT layout, each under a name; adapters load and unload while the engine runs.
/// </summary>
public sealed class GenerationEngine : IDisposable
{
    abstract record Job;
    sealed record GenerateJob(string Model, IReadOnlyList<SampleRequest> Requests, Action<GeneratedToken>? OnToken,
        TaskCompletionSource<IReadOnlyList<Sample[]>> Done) : Job;
    sealed record ScoreJob(string Model, int[] Ids, int Top, TaskCompletionSource<PromptScore> Done) : Job;
    sealed record LoadJob(string Name, string Directory, TaskCompletionSource Done) : Job;
    sealed record UnloadJob(string Name, TaskCompletionSource Done) : Job;

    sealed class Served(LlamaForCausalLM model, string directory, PrefixCache? cache) : IDisposable
    {
        public LlamaForCausalLM Model { get; } = model;
        public string Directory { get; } = directory;
        public PrefixCache? Cache { get; } = cache;
        public void Dispose() => Model.Dispose();
    }

    readonly BlockingCollection<Job> _jobs = new();
    readonly Dictionary<string, Served> _models = []; // the engine thread's only
    readonly ConcurrentDictionary<string, string> _names = new(); // name -> folder, for any thread
    readonly Thread _thread;
    readonly string _baseDirectory, _device, _dtype;
    readonly long _prefixCacheBytes;
    readonly int _maxRows;
    long _batches, _rows;

    public ITokenizer Tokenizer { get; }
    public LlamaConfig Config { get; }
    public string BaseName { get; }
    /// <summary>tokenizer_config.json's chat format (plain for a checkpoint without a template).</summary>
    public ChatTemplate ChatTemplate { get; }
    public GenerationStats Stats { get; } = new();
    public (long Batches, long Rows) BatchCounts => (Interlocked.Read(ref _batches), Interlocked.Read(ref _rows));

    /// <param name="maxRows">most samples one forward batch holds; more queued samples wait for the next batch</param>
    public GenerationEngine(string checkpoint, string baseName, string device = "cpu", string dtype = "float32", int prefixCacheMb = 256, int maxRows = 64)
    {
        (_baseDirectory, _device, _dtype, _prefixCacheBytes, _maxRows, BaseName) = (Path.GetFullPath(checkpoint), device, dtype, prefixCacheMb * 1024L * 1024, maxRows, baseName);
        Tokenizer = Checkpoint.LoadTokenizer(checkpoint, out var config);
        Config = config;
        ChatTemplate = (Tokenizer as HfTokenizer)?.ChatTemplate ?? ChatTemplate.Plain;
        var loaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _thread = new Thread(() => Run(loaded)) { IsBackground = true, Name = "generation" };
        _thread.Start();
        loaded.Task.GetAwaiter().GetResult(); // a checkpoint that does not load fails the constructor
    }

    /// <summary>The served names with their folders: the base first, then the adapters by name.</summary>
    public IReadOnlyList<(string Name, string Directory)> Models =>
        [(BaseName, _baseDirectory), .. _names.Where(n => n.Key != BaseName).OrderBy(n => n.Key, StringComparer.Ordinal).Select(n => (n.Key, n.Value))];

    public bool Serves(string name) => _names.ContainsKey(name);

    public Task<IReadOnlyList<Sample[]>> GenerateAsync(string model, IReadOnlyList<SampleRequest> requests, Action<GeneratedToken>? onToken = null)
    {
        var done = new TaskCompletionSource<IReadOnlyList<Sample[]>>(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(new GenerateJob(model, requests, onToken, done));
        return done.Task;
    }

    /// <summary>Log-probs of each token of a sequence given the ones before it (the first has none), with the top alternatives.</summary>
    public Task<PromptScore> ScoreAsync(string model, int[] ids, int top)
    {
        var done = new TaskCompletionSource<PromptScore>(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(new ScoreJob(model, ids, top, done));
        return done.Task;
    }

    /// <summary>Loads a LoRA adapter folder (PEFT layout) on the base model under <paramref name="name"/>.</summary>
    public Task LoadAdapterAsync(string name, string directory)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(new LoadJob(name, directory, done));
        return done.Task;
    }

    public Task UnloadAdapterAsync(string name)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(new UnloadJob(name, done));
        return done.Task;
    }

    void Enqueue(Job job)
    {
        try { _jobs.Add(job); }
        catch (InvalidOperationException) { throw new ObjectDisposedException(nameof(GenerationEngine)); }
    }

    void Run(TaskCompletionSource loaded)
    {
        try
        {
            var model = Checkpoint.LoadModel(_baseDirectory, _device, _dtype);
            _models[BaseName] = new Served(model, _baseDirectory, NewCache());
            _names[BaseName] = _baseDirectory;
            loaded.SetResult();
        }
        catch (Exception e)
        {
            loaded.SetException(e);
            return;
        }
        foreach (var first in _jobs.GetConsumingEnumerable())
        {
            var batch = new List<Job> { first };
            while (_jobs.TryTake(out var more)) batch.Add(more);
            // Loads, unloads and scores run in arrival order before the generation that queued with them.
            foreach (var job in batch.Where(j => j is not GenerateJob)) RunOne(job);
            foreach (var group in batch.OfType<GenerateJob>().GroupBy(j => j.Model)) Generate(group.Key, [.. group]);
        }
        foreach (var served in _models.Values) served.Dispose();
    }

    PrefixCache? NewCache() => _prefixCacheBytes > 0 ? new PrefixCache(_prefixCacheBytes) : null;

    Served Find(string name) => _models.TryGetValue(name, out var served) ? served : throw new UnknownModelException(name);

    void RunOne(Job job)
    {
        switch (job)
        {
            case ScoreJob s:
                try { s.Done.SetResult(Score(Find(s.Model).Model, s.Ids, s.Top)); }
                catch (Exception e) { s.Done.SetException(e); }
                break;
            case LoadJob l:
                try
                {
                    if (_models.ContainsKey(l.Name)) throw new ArgumentException($"The model '{l.Name}' is already loaded.");
                    var model = Checkpoint.LoadModel(_baseDirectory, _device, _dtype);
                    try { LoraAdapter.Load(model, l.Directory); }
                    catch
                    {
                        model.Dispose();
                        throw;
                    }
                    model.eval();
                    _models[l.Name] = new Served(model, Path.GetFullPath(l.Directory), NewCache());
                    _names[l.Name] = Path.GetFullPath(l.Directory);
                    l.Done.SetResult();
                }
                catch (Exception e) { l.Done.SetException(e); }
                break;
            case UnloadJob u:
                try
                {
                    if (u.Name == BaseName) throw new ArgumentException($"The base model '{u.Name}' cannot be unloaded.");
                    var served = Find(u.Name);
                    _models.Remove(u.Name);
                    _names.TryRemove(u.Name, out _);
                    served.Dispose();
                    u.Done.SetResult();
                }
                catch (Exception e) { u.Done.SetException(e); }
                break;
        }
    }

    void Generate(string name, IReadOnlyList<GenerateJob> jobs)
    {
        Served served;
        try { served = Find(name); }
        catch (Exception e)
        {
            foreach (var job in jobs) job.Done.SetException(e);
            return;
        }
        // Chunks of at most _maxRows samples (a job larger than that runs alone).
        var chunk = new List<GenerateJob>();
        var rows = 0;
        foreach (var job in jobs)
        {
            var jobRows = job.Requests.Sum(r => r.Count);
            if (chunk.Count > 0 && rows + jobRows > _maxRows)
            {
                GenerateChunk(served, chunk);
                (chunk, rows) = ([], 0);
            }
            chunk.Add(job);
            rows += jobRows;
        }
        if (chunk.Count > 0) GenerateChunk(served, chunk);
    }

    void GenerateChunk(Served served, List<GenerateJob> jobs)
    {
        var requests = jobs.SelectMany(j => j.Requests).ToList();
        var owner = jobs.SelectMany((j, k) => j.Requests.Select((_, i) => (Job: k, Index: i))).ToArray();
        var streaming = jobs.Any(j => j.OnToken is not null);
        var options = new GenerationOptions
        {
            Decode = ids => Tokenizer.Decode(ids),
            PrefixCache = served.Cache,
            Stats = Stats,
            OnToken = streaming ? t =>
            {
                var (job, index) = owner[t.Request];
                jobs[job].OnToken?.Invoke(t with { Request = index });
            } : null,
        };
        try
        {
            var results = Sampler.Generate(served.Model, requests, Random.Shared.NextInt64(), options);
            Interlocked.Increment(ref _batches);
            Interlocked.Add(ref _rows, requests.Sum(r => r.Count));
            var offset = 0;
            foreach (var job in jobs)
            {
                job.Done.TrySetResult(results.Skip(offset).Take(job.Requests.Count).ToList());
                offset += job.Requests.Count;
            }
        }
        catch (Exception e)
        {
            // One bad request must not fail the others that shared its batch: run each job alone to find it.
            if (jobs.Count > 1)
                foreach (var job in jobs) GenerateChunk(served, [job]);
            else jobs[0].Done.TrySetException(e);
        }
    }

    static PromptScore Score(LlamaForCausalLM model, int[] ids, int top)
    {
        if (ids.Length < 2) return new PromptScore([], []);
        foreach (var id in ids)
            if (id < 0 || id >= model.Config.VocabSize) throw new ArgumentException($"token id {id} is outside the vocabulary (0..{model.Config.VocabSize - 1})");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var input = torch.tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length], device: model.Device);
        // Position t holds log p(token t+1 | ..t).
        var logSoftmax = model.Forward(input)[0, ..^1, ..].log_softmax(-1);
        var next = torch.tensor(ids[1..].Select(i => (long)i).ToArray(), device: model.Device).unsqueeze(1);
        var chosen = logSoftmax.gather(1, next).squeeze(1).cpu().data<float>().ToArray();
        if (top <= 0) return new PromptScore(chosen, []);
        var k = Math.Min(top, (int)logSoftmax.shape[1]);
        var (values, indices) = logSoftmax.topk(k, -1);
        var (v, x) = (values.cpu().data<float>().ToArray(), indices.cpu().data<long>().ToArray());
        var alternatives = Enumerable.Range(0, chosen.Length)
            .Select(t => Enumerable.Range(t * k, k).Select(i => new TokenLogProb((int)x[i], v[i])).ToArray()).ToList();
        return new PromptScore(chosen, alternatives);
    }

    public void Dispose()
    {
        _jobs.CompleteAdding();
        _thread.Join();
        _jobs.Dispose();
    }
}

/// <summary>Per token after the first: its log-prob given the ones before, and the most likely alternatives there.</summary>
public sealed record PromptScore(float[] LogProbs, IReadOnlyList<TokenLogProb[]> Top);
