namespace OnlineAlign.Specs;

/// <summary>
/// Collects a section's problems, each naming the field by its runs.proto path and quoting the bad value. Every
/// check runs: one bad field never hides another.
/// </summary>
public sealed class SpecProblems(string section)
{
    private readonly List<string> _problems = [];

    public IReadOnlyList<string> List => _problems;

    private string Path(string field) => section.Length == 0 ? field : $"{section}.{field}";

    public void Add(string problem) => _problems.Add(problem);

    /// <summary>An integer count between <paramref name="min"/> and <paramref name="max"/>, both included.</summary>
    public void Range(string field, long value, long min, long max)
    {
        if (value < min || value > max) _problems.Add($"{Path(field)} must be between {min} and {max}, got {value}");
    }

    /// <summary>A real number: finite, above its lower bound (or at it, when <paramref name="minIncluded"/>), at most <paramref name="max"/>.</summary>
    public void Real(string field, double value, double min, bool minIncluded, double max)
    {
        if (!double.IsFinite(value)) _problems.Add($"{Path(field)} must be a finite number, got {value}");
        else if (minIncluded ? value < min : value <= min) _problems.Add($"{Path(field)} must be {(minIncluded ? ">=" : ">")} {min}, got {value}");
        else if (value > max) _problems.Add($"{Path(field)} must be at most {max}, got {value}");
    }

    /// <summary>A name from a fixed list (its length is checked first: a huge value is not quoted).</summary>
    public void OneOf(string field, string value, IReadOnlyCollection<string> names, int maxLength)
    {
        if (value.Length > maxLength) _problems.Add($"{Path(field)} is {value.Length} characters long; the limit is {maxLength}");
        else if (!names.Contains(value)) _problems.Add($"{Path(field)} '{value}' is not one of {string.Join(", ", names)}");
    }

    public void Length(string field, string? value, int max)
    {
        if (value is not null && value.Length > max) _problems.Add($"{Path(field)} is {value.Length} characters long; the limit is {max}");
    }
}
