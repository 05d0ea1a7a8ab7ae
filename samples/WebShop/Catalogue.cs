namespace SelfPlay.Samples.WebShop;

/// <summary>One product: id "p12", category, material, color, price, and the sizes it comes in.</summary>
public sealed record Product(string Id, string Category, string Material, string Color, int Price, IReadOnlyList<string> Sizes)
{
    public string Title => $"{Color} {Material} {Category}";
}

/// <summary>
/// The shop's catalogue: one product per (category, material, color), 144 in all, with seeded prices and sizes.
/// Search ranks products by how many query words their title contains.
/// </summary>
public sealed class Catalogue
{
    static readonly (string Category, string[] Materials)[] Kinds =
    [
        ("shirt", ["cotton", "linen", "silk"]), ("shoes", ["leather", "canvas", "suede"]), ("mug", ["ceramic", "steel", "glass"]),
        ("lamp", ["desk", "floor", "wall"]), ("bag", ["leather", "canvas", "nylon"]), ("hat", ["wool", "straw", "felt"]),
        ("sofa", ["fabric", "leather", "velvet"]), ("watch", ["steel", "gold", "titanium"]),
    ];
    static readonly string[] Colors = ["red", "blue", "black", "white", "green", "grey"];
    public static readonly string[] AllSizes = ["s", "m", "l"];

    public IReadOnlyList<Product> Products { get; }
    readonly Dictionary<string, Product> _byId;

    public Catalogue(int seed = 7)
    {
        var random = new Random(seed);
        var products = new List<Product>();
        foreach (var (category, materials) in Kinds)
            foreach (var material in materials)
                foreach (var color in Colors)
                {
                    var sizes = AllSizes.Where(_ => random.Next(4) > 0).ToList();
                    if (sizes.Count < 2) sizes = ["m", "l"];
                    products.Add(new Product($"p{products.Count}", category, material, color, random.Next(5, 96), sizes));
                }
        Products = products;
        _byId = products.ToDictionary(p => p.Id);
    }

    public Product? Find(string id) => _byId.GetValueOrDefault(id);

    /// <summary>The best matches for the query, best first (ties by catalogue order); none for a query no title shares a word with.</summary>
    public IReadOnlyList<Product> Search(string query, int limit = 3)
    {
        var words = query.ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct().ToArray();
        return Products.Select(p => (Product: p, Score: words.Count(w => p.Title.Split(' ').Contains(w))))
            .Where(x => x.Score > 0).OrderByDescending(x => x.Score).Take(limit).Select(x => x.Product).ToList();
    }
}
