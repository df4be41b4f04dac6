using System.Globalization;
using System.Text;
using JDict = System.Collections.Generic.OrderedDictionary<string, object?>;
using JList = System.Collections.Generic.List<object?>;

namespace OnlineAlign.Modeling.Templates;

/// <summary>
/// The methods a template may call on strings and dicts (the non-mutating ones Python has, as Jinja's immutable
/// sandbox allows) and the globals transformers provides: range, namespace, dict, raise_exception, strftime_now.
/// </summary>
internal sealed partial class TemplateRenderer
{
    private TemplateFunction? StringMethod(string s, string name)
    {
        Func<JList, JDict, int, object?>? method = name switch
        {
            "startswith" => (a, k, line) => Affix(s, Arg(a, k, 0, "prefix"), line, (t, p) => t.StartsWith(p, StringComparison.Ordinal)),
            "endswith" => (a, k, line) => Affix(s, Arg(a, k, 0, "suffix"), line, (t, p) => t.EndsWith(p, StringComparison.Ordinal)),
            "strip" => (a, k, _) => Arg(a, k, 0, "chars") is string c ? s.Trim(c.ToCharArray()) : s.Trim(),
            "lstrip" => (a, k, _) => Arg(a, k, 0, "chars") is string c ? s.TrimStart(c.ToCharArray()) : s.TrimStart(),
            "rstrip" => (a, k, _) => Arg(a, k, 0, "chars") is string c ? s.TrimEnd(c.ToCharArray()) : s.TrimEnd(),
            "split" => (a, k, line) => Split(s, Arg(a, k, 0, "sep"), Arg(a, k, 1, "maxsplit", -1L), line),
            "upper" => (_, _, _) => s.ToUpperInvariant(),
            "lower" => (_, _, _) => s.ToLowerInvariant(),
            "title" => (_, _, _) => Title(s),
            "capitalize" => (_, _, _) => Capitalize(s),
            "replace" => (a, k, line) => Bounded(Replace(s, Arg(a, k, 0, "old"), Arg(a, k, 1, "new"), Arg(a, k, 2, "count"), line), line),
            "find" => (a, k, line) =>
                (long)s.IndexOf(Arg(a, k, 0, "sub") as string ?? throw new TemplateException("find needs a string", line), StringComparison.Ordinal),
            "count" => (a, k, line) => Count(s, Arg(a, k, 0, "sub") as string ?? throw new TemplateException("count needs a string", line)),
            "join" => (a, k, line) => Bounded(string.Join(s, TemplateValues.Iterate(Arg(a, k, 0, "iterable"), line).Select(TemplateValues.Str)), line),
            "isdigit" => (_, _, _) => s.Length > 0 && s.All(char.IsDigit),
            "isalpha" => (_, _, _) => s.Length > 0 && s.All(char.IsLetter),
            "isspace" => (_, _, _) => s.Length > 0 && s.All(char.IsWhiteSpace),
            _ => null,
        };
        return method is null ? null : new TemplateFunction("str." + name, method);
    }

    private static TemplateFunction? DictMethod(JDict d, string name)
    {
        Func<JList, JDict, int, object?>? method = name switch
        {
            "get" => (a, k, line) => Arg(a, k, 0, "key") is string key ? d.TryGetValue(key, out var v) ? v : Arg(a, k, 1, "default")
                : throw new TemplateException("dict.get needs a string key", line),
            "items" => (_, _, _) => d.Select(p => (object?)new JList { p.Key, p.Value }).ToList(),
            "keys" => (_, _, _) => d.Keys.Cast<object?>().ToList(),
            "values" => (_, _, _) => d.Values.ToList(),
            _ => null,
        };
        return method is null ? null : new TemplateFunction("dict." + name, method);
    }

    private static bool Affix(string s, object? affix, int line, Func<string, string, bool> test) => affix switch
    {
        string one => test(s, one),
        JList many => many.Any(p => p is string one && test(s, one)),
        _ => throw new TemplateException("startswith/endswith need a string or a list of strings", line),
    };

    private static long Count(string s, string sub)
    {
        if (sub.Length == 0) return TemplateValues.StringChars(s).Count + 1;
        long n = 0;
        for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>Python's str.split: on a separator, or (none) on runs of whitespace with no empty parts.</summary>
    private static JList Split(string s, object? sep, object? maxsplit, int line)
    {
        long max = maxsplit is long m ? m : -1;
        if (sep is null)
        {
            var words = new JList();
            int i = 0;
            while (true)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (max >= 0 && words.Count == max) { words.Add(s[i..].TrimEnd()); break; }
                int start = i;
                while (i < s.Length && !char.IsWhiteSpace(s[i])) i++;
                words.Add(s[start..i]);
            }
            return words;
        }
        if (sep is not string separator) throw new TemplateException("split needs a string separator", line);
        if (separator.Length == 0) throw new TemplateException("split: empty separator", line);
        var parts = max < 0 ? s.Split(separator) : s.Split(separator, (int)Math.Min(max + 1, int.MaxValue));
        return parts.Cast<object?>().ToList();
    }

    private IEnumerable<TemplateFunction> GlobalFunctions()
    {
        yield return new TemplateFunction("raise_exception", (a, k, line) =>
            throw new TemplateException($"the template raised an error: {TemplateValues.Str(Arg(a, k, 0, "message", ""))}", line, raised: true));
        yield return new TemplateFunction("namespace", (a, k, line) =>
        {
            var ns = new Namespace();
            if (a.Count > 0 && a[0] is JDict initial) foreach (var (key, value) in initial) ns.Attributes[key] = value;
            foreach (var (key, value) in k) ns.Attributes[key] = value;
            return ns;
        });
        yield return new TemplateFunction("dict", (a, k, _) =>
        {
            var dict = new JDict();
            if (a.Count > 0 && a[0] is JDict initial) foreach (var (key, value) in initial) dict[key] = value;
            foreach (var (key, value) in k) dict[key] = value;
            return dict;
        });
        yield return new TemplateFunction("range", Range);
        yield return new TemplateFunction("strftime_now", (a, k, line) =>
            Strftime(DateTime.Now, Arg(a, k, 0, "format") as string ?? throw new TemplateException("strftime_now needs a format string", line)));
    }

    private JList Range(JList args, JDict kwargs, int line)
    {
        if (args.Count is 0 or > 3 || args.Any(a => a is not long)) throw new TemplateException("range needs one to three integers", line);
        long start = args.Count == 1 ? 0 : (long)args[0]!, stop = args.Count == 1 ? (long)args[0]! : (long)args[1]!,
            step = args.Count == 3 ? (long)args[2]! : 1;
        if (step == 0) throw new TemplateException("range step cannot be zero", line);
        double count = Math.Max(0, Math.Ceiling(((double)stop - start) / step));
        CountIterations((long)Math.Min(count, long.MaxValue / 2), line);
        var items = new JList();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) items.Add(i);
        return items;
    }

    /// <summary>Python's strftime for the codes templates use (Llama-3.1 writes "Today Date: 26 Jul 2024" with %d %b %Y).</summary>
    internal static string Strftime(DateTime now, string format)
    {
        var b = new StringBuilder();
        var invariant = CultureInfo.InvariantCulture;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { b.Append(format[i]); continue; }
            char code = format[++i];
            b.Append(code switch
            {
                'd' => now.ToString("dd", invariant),
                'm' => now.ToString("MM", invariant),
                'Y' => now.ToString("yyyy", invariant),
                'y' => now.ToString("yy", invariant),
                'b' => now.ToString("MMM", invariant),
                'B' => now.ToString("MMMM", invariant),
                'a' => now.ToString("ddd", invariant),
                'A' => now.ToString("dddd", invariant),
                'H' => now.ToString("HH", invariant),
                'I' => now.ToString("hh", invariant),
                'M' => now.ToString("mm", invariant),
                'S' => now.ToString("ss", invariant),
                'p' => now.ToString("tt", invariant),
                'j' => now.DayOfYear.ToString("000", invariant),
                'e' => now.Day.ToString(invariant).PadLeft(2),
                '%' => "%",
                _ => "%" + code,
            });
        }
        return b.ToString();
    }
}
