using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.WebShop;

/// <summary>
/// Web navigation over the shop's real HTTP pages. The task input is "p12 m 40" (the goal product, size, price
/// limit); the state is "Task: red cotton shirt, size m, under 40\n> [search]\n", then per step the action line
/// and the page it led to, rendered as one "> " line with clickable elements in brackets. Actions: search[query]
/// (on a page with a search box) and click[element] (a product id, a size, buy, back). The policy writes an action
/// up to "]". Buying ends the episode; the reward is the share of the goal's attributes the bought item matches
/// (category, material, color, size, price under the limit), as in WebShop. A click on an element that is not on
/// the page, a malformed action or an HTTP failure ends the episode with reward 0 and a reason.
/// </summary>
public sealed partial class WebShopEnvironment : IEnvironment, IDisposable
{
    const int MaxActionLength = 80;
    readonly HttpClient _http;
    readonly ShopServer? _ownedServer;
    readonly Catalogue _catalogue;
    readonly Lazy<string> _startPage;

    /// <summary>Against a running shop; with <paramref name="ownedServer"/>, disposing the environment stops it.</summary>
    public WebShopEnvironment(Uri shop, Catalogue catalogue, ShopServer? ownedServer = null, TimeSpan? httpTimeout = null)
    {
        _http = new HttpClient { BaseAddress = shop, Timeout = httpTimeout ?? TimeSpan.FromSeconds(5) };
        _catalogue = catalogue;
        _ownedServer = ownedServer;
        // PublicationOnly: a failed first request (the shop slow to answer under load) is not cached, the next call retries.
        _startPage = new Lazy<string>(() => Render(Get("/")), LazyThreadSafetyMode.PublicationOnly);
    }

    public string Name => "webshop";
    public string StepStop => "]";

    /// <summary>Fetches the start page now, so a campaign's first tasks do not all wait on a cold server at once.</summary>
    public void Prefetch() => _ = _startPage.Value;

    public string InitialState(EnvTask task) => $"Task: {Goal.Parse(task.Input, _catalogue).Instruction}\n> {_startPage.Value}\n";

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        action ??= "";
        if (action.Length > MaxActionLength) return Invalid(action, $"action is too long ({action.Length} characters)");
        var (page, item) = CurrentPage(state ?? "");
        try
        {
            var result = Act(page, item, action.Trim());
            if (result.Error is { } error) return Invalid(action, error);
            var line = result.Action + "\n";
            if (result.Bought is not { } bought) return StepOutcome.Continue(line + "> " + result.Page + "\n");
            var (reward, reason) = Goal.Parse(task.Input, _catalogue).Score(bought);
            return StepOutcome.End(line, reward, reason);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            return Invalid(action, $"the shop did not answer: {e.GetType().Name}");
        }
    }

    /// <summary>Replays every action against the shop: each page must be the one the shop shows, the last action a purchase.</summary>
    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        Goal goal;
        try { goal = Goal.Parse(task.Input, _catalogue); }
        catch (FormatException e) { return (0, e.Message); }
        var prefix = $"Task: {goal.Instruction}\n";
        if (finalState is null || !finalState.StartsWith(prefix, StringComparison.Ordinal)) return (0, "the state does not start with this task's line");
        var lines = finalState[prefix.Length..].TrimEnd('\n').Split('\n');
        try
        {
            var (page, item) = (_startPage.Value, (string?)null);
            if (lines[0] != "> " + page) return (0, "the first page is not the shop's start page");
            for (var i = 1; i < lines.Length; i += 2)
            {
                var result = Act(page, item, lines[i]);
                if (result.Error is { } error) return (0, $"line {i + 2}: {error}");
                if (result.Bought is { } bought) return i == lines.Length - 1 ? goal.Score(bought) : (0, "actions after the purchase");
                if (i + 1 >= lines.Length || lines[i + 1] != "> " + result.Page) return (0, $"line {i + 3} is not the page the shop shows");
                (page, item) = (result.Page!, result.Item);
            }
            return (0, "nothing was bought");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            return (0, $"the shop did not answer: {e.GetType().Name}");
        }
    }

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random)
    {
        var goal = Goal.Parse(task.Input, _catalogue);
        return [$"search[{goal.Product.Title}", $"click[{goal.Product.Id}", $"click[{goal.Size}", "click[buy"];
    }

    /// <summary>The clickable elements of the current page, as click[...] actions (a search box is typed into, not clicked).</summary>
    public IReadOnlyList<string>? LegalActions(EnvTask task, string state) =>
        Clickables(CurrentPage(state ?? "").Page).Where(c => c != "search").Select(c => $"click[{c}]").ToList();

    /// <summary>
    /// The process score of a step that did not end the episode: on a result page, 1 when the goal product is listed;
    /// on an item page, the reward buying there now would get (so choosing the goal's size raises it to 1); 0 on the
    /// start page. No HTTP: the page is in the outcome, the product in the catalogue.
    /// </summary>
    public double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome)
    {
        if (outcome.IsTerminal) return null;
        var goal = Goal.Parse(task.Input, _catalogue);
        var (page, item) = CurrentPage((stateBefore ?? "") + outcome.Appended);
        var clickables = Clickables(page);
        if (clickables.Contains("buy") && item is not null && _catalogue.Find(item) is { } product)
        {
            var size = SelectedSize().Match(page) is { Success: true } s ? s.Groups[1].Value : "none";
            return goal.Score(new Purchase(product.Category, product.Material, product.Color, size, product.Price)).Reward;
        }
        return clickables.Contains(goal.Product.Id) ? 1 : 0;
    }

    sealed record ActResult(string Action, string? Page, string? Item, Purchase? Bought, string? Error);

    /// <summary>One action on a page (rendered text) whose product, if an item page, is <paramref name="item"/>.</summary>
    ActResult Act(string page, string? item, string text)
    {
        var match = ActionSyntax().Match(text);
        if (!match.Success) return Fail(text, "expected search[query] or click[element]");
        var (verb, argument) = (match.Groups[1].Value, match.Groups[2].Value.Trim());
        var action = $"{verb}[{argument}]";
        var clickables = Clickables(page);
        if (verb == "search")
        {
            if (!clickables.Contains("search")) return Fail(action, "there is no search box on this page (click[back] first)");
            if (argument.Length == 0) return Fail(action, "empty search");
            return new ActResult(action, Render(Get("/search?q=" + Uri.EscapeDataString(argument))), null, null, null);
        }
        if (!clickables.Contains(argument)) return Fail(action, $"there is no '{Short(argument)}' to click on this page");
        if (argument == "back") return new ActResult(action, _startPage.Value, null, null, null);
        if (ProductId().IsMatch(argument)) return new ActResult(action, Render(Get("/item/" + argument)), argument, null, null);
        if (item is null) return Fail(action, "no product is open");
        if (argument == "buy")
        {
            var size = SelectedSize().Match(page) is { Success: true } s ? s.Groups[1].Value : null;
            var html = Post($"/buy?item={item}" + (size is null ? "" : "&size=" + size));
            var facts = Facts().Matches(html).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
            return new ActResult(action, null, item, new Purchase(facts["category"], facts["material"], facts["color"], facts["size"],
                int.Parse(facts["price"], CultureInfo.InvariantCulture)), null);
        }
        return new ActResult(action, Render(Get($"/item/{item}?size={Uri.EscapeDataString(argument)}")), item, null, null);
    }

    static ActResult Fail(string action, string error) => new(action, null, null, null, error);

    /// <summary>The last page shown in the state and the product last opened.</summary>
    (string Page, string? Item) CurrentPage(string state)
    {
        var lines = state.TrimEnd('\n').Split('\n');
        var page = lines.LastOrDefault(l => l.StartsWith("> ", StringComparison.Ordinal))?[2..] ?? _startPage.Value;
        var item = lines.Select(l => ItemClick().Match(l)).LastOrDefault(m => m.Success)?.Groups[1].Value;
        return (page, item);
    }

    static List<string> Clickables(string page) => Bracketed().Matches(page).Select(m => m.Groups[1].Value).ToList();

    string Get(string path)
    {
        using var response = _http.Send(new HttpRequestMessage(HttpMethod.Get, path));
        return Read(response, path);
    }

    string Post(string path)
    {
        using var response = _http.Send(new HttpRequestMessage(HttpMethod.Post, path));
        return Read(response, path);
    }

    static string Read(HttpResponseMessage response, string path)
    {
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{path}: HTTP {(int)response.StatusCode}");
        using var reader = new StreamReader(response.Content.ReadAsStream());
        return reader.ReadToEnd();
    }

    /// <summary>HTML to one line of text: links and buttons become [text], the selected option (text), other tags go.</summary>
    static string Render(string html)
    {
        var text = Clickable().Replace(html, m => $" [{WebUtility.HtmlDecode(m.Groups[2].Value)}] ");
        text = Selected().Replace(text, m => $" ({m.Groups[1].Value}) ");
        text = AnyTag().Replace(text, " ");
        return string.Join(' ', WebUtility.HtmlDecode(text).Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    static StepOutcome Invalid(string action, string reason)
    {
        var shown = action.ReplaceLineEndings(" ");
        return StepOutcome.End((shown.Length > 40 ? shown[..40] : shown) + "\n", 0, reason);
    }

    static string Short(string text) => text.Length > 20 ? text[..20] + "..." : text;

    public void Dispose()
    {
        _http.Dispose();
        _ownedServer?.Dispose();
    }

    [GeneratedRegex(@"^(search|click)\[([a-z0-9 ]{0,60})\]?$")] private static partial Regex ActionSyntax();
    [GeneratedRegex(@"^p\d{1,4}$")] private static partial Regex ProductId();
    [GeneratedRegex(@"^click\[(p\d{1,4})\]$")] private static partial Regex ItemClick();
    [GeneratedRegex(@"\[([^\]]+)\]")] private static partial Regex Bracketed();
    [GeneratedRegex(@"\(([sml])\)")] private static partial Regex SelectedSize();
    [GeneratedRegex(@"<(a|button)\b[^>]*>([^<]*)</\1>")] private static partial Regex Clickable();
    [GeneratedRegex(@"<b class=""selected"">([^<]*)</b>")] private static partial Regex Selected();
    [GeneratedRegex(@"<[^>]*>")] private static partial Regex AnyTag();
    [GeneratedRegex(@"<dt>(\w+)</dt><dd>([^<]*)</dd>")] private static partial Regex Facts();
}

/// <summary>What the shop confirmed as bought.</summary>
public sealed record Purchase(string Category, string Material, string Color, string Size, int Price);

/// <summary>A task's goal: a product's attributes, a size and a price limit.</summary>
public sealed record Goal(Product Product, string Size, int Limit)
{
    public string Instruction => $"{Product.Title}, size {Size}, under {Limit}";

    /// <summary>"p12 m 40".</summary>
    public static Goal Parse(string input, Catalogue catalogue)
    {
        var p = (input ?? "").Split(' ');
        if (p.Length != 3 || catalogue.Find(p[0]) is not { } product || !product.Sizes.Contains(p[1])
            || !int.TryParse(p[2], NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit <= product.Price)
            throw new FormatException($"not a webshop task: '{(input is { Length: > 40 } ? input[..40] : input)}'");
        return new Goal(product, p[1], limit);
    }

    /// <summary>WebShop's attribute match: the share of category, material, color, size and price-under-limit that hold.</summary>
    public (double Reward, string Reason) Score(Purchase bought)
    {
        var checks = new (string Name, bool Ok)[]
        {
            ("category", bought.Category == Product.Category), ("material", bought.Material == Product.Material),
            ("color", bought.Color == Product.Color), ("size", bought.Size == Size), ("price", bought.Price < Limit),
        };
        var missed = checks.Where(c => !c.Ok).Select(c => c.Name).ToList();
        var reward = (double)(checks.Length - missed.Count) / checks.Length;
        return missed.Count == 0
            ? (1, "solved")
            : (reward, $"bought {bought.Color} {bought.Material} {bought.Category} size {bought.Size} for {bought.Price}: {string.Join(", ", missed)} wrong");
    }
}
