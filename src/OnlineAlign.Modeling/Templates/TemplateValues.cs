using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using JDict = System.Collections.Generic.OrderedDictionary<string, object?>;
using JList = System.Collections.Generic.List<object?>;

namespace OnlineAlign.Modeling.Templates;

/// <summary>
/// A variable that does not exist (or a missing key). As Jinja's default Undefined: prints as nothing, is false,
/// iterates as empty, and is an error to look into, to add to, or to call.
/// </summary>
internal sealed class Undefined(string name)
{
    public string Name { get; } = name;
}

/// <summary>namespace(...): the one mutable object a template has, so a loop can carry state out of its scope.</summary>
internal sealed class Namespace
{
    public JDict Attributes { get; } = [];
}

/// <summary>A function a template can call: a global (range, namespace, raise_exception), a method or a macro.</summary>
internal sealed class TemplateFunction(string name, Func<JList, JDict, int, object?> call)
{
    public string Name { get; } = name;
    public object? Invoke(JList args, JDict kwargs, int line) => call(args, kwargs, line);
}

/// <summary>
/// The values a template sees: null (none), bool, long, double, string, lists, ordered string-keyed dicts, and the
/// types above. Nothing else ever reaches a template, so it cannot reach .NET objects or reflection.
/// </summary>
internal static class TemplateValues
{
    /// <summary>Converts caller data (JSON, or plain .NET strings, numbers, lists and dictionaries) to template values.</summary>
    public static object? From(object? value) => value switch
    {
        null => null,
        string or bool or long or double => value,
        int i => (long)i,
        float f => (double)f,
        JsonNode node => FromJson(node),
        JsonElement element => FromJson(JsonNode.Parse(element.GetRawText())),
        IEnumerable<KeyValuePair<string, object?>> pairs => ToDict(pairs),
        IEnumerable<KeyValuePair<string, string>> pairs => ToDict(pairs.Select(p => new KeyValuePair<string, object?>(p.Key, p.Value))),
        IEnumerable items when value is not string => items.Cast<object?>().Select(From).ToList(),
        _ => throw new ArgumentException($"a {value.GetType().Name} cannot be passed to a template"),
    };

    private static JDict ToDict(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var dict = new JDict();
        foreach (var (key, item) in pairs) dict[key] = From(item);
        return dict;
    }

    public static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => ToDict(o.Select(p => new KeyValuePair<string, object?>(p.Key, p.Value))),
        JsonArray a => a.Select(FromJson).ToList(),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => v.TryGetValue(out long l) ? (object)l : v.GetValue<double>(),
            _ => null,
        },
        _ => null,
    };

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        JList l => l.Count > 0,
        JDict d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "none",
        Undefined u => $"undefined ('{u.Name}')",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        JList => "list",
        JDict => "dict",
        Namespace => "namespace",
        TemplateFunction => "function",
        LoopInfo => "loop",
        _ => v.GetType().Name,
    };

    /// <summary>Python's str(): what {{ value }} prints.</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>Python's repr(), used inside printed lists and dicts.</summary>
    public static string Repr(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => QuoteRepr(s),
        JList l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        JDict d => "{" + string.Join(", ", d.Select(p => QuoteRepr(p.Key) + ": " + Repr(p.Value))) + "}",
        Namespace => "<Namespace>",
        TemplateFunction f => $"<function {f.Name}>",
        LoopInfo => "<LoopContext>",
        _ => "?",
    };

    private static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        string s = d.ToString("R", CultureInfo.InvariantCulture);
        if (s.Contains('E')) return s.Replace("E", "e");
        return s.Contains('.') ? s : s + ".0";
    }

    private static string QuoteRepr(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var b = new StringBuilder().Append(quote);
        foreach (char c in s)
            b.Append(c switch
            {
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when c == quote => "\\" + c,
                _ => c.ToString(),
            });
        return b.Append(quote).ToString();
    }

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static double ToDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => double.NaN };

    /// <summary>Python's ==: numbers by value (True == 1), strings ordinally, lists and dicts element by element.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (a is long la && b is long lb) return la == lb;
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a) == ToDouble(b);
        return (a, b) switch
        {
            (string sa, string sb) => sa == sb,
            (JList xa, JList xb) => xa.Count == xb.Count && xa.Zip(xb).All(p => Equal(p.First, p.Second)),
            (JDict da, JDict db) => da.Count == db.Count && da.All(p => db.TryGetValue(p.Key, out var other) && Equal(p.Value, other)),
            _ => ReferenceEquals(a, b),
        };
    }

    /// <summary>Python's ordering for &lt; &gt;: numbers, strings (by code point) and lists; anything else is an error.</summary>
    public static int Compare(object? a, object? b, int line)
    {
        if (a is long la && b is long lb) return la.CompareTo(lb);
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string sa && b is string sb) return string.CompareOrdinal(sa, sb);
        if (a is JList xa && b is JList xb)
        {
            for (int i = 0; i < Math.Min(xa.Count, xb.Count); i++)
                if (!Equal(xa[i], xb[i])) return Compare(xa[i], xb[i], line);
            return xa.Count.CompareTo(xb.Count);
        }
        throw new TemplateException($"cannot order {TypeName(a)} and {TypeName(b)}", line);
    }

    /// <summary>What a for loop walks: a list's items, a dict's keys, a string's characters; nothing for undefined.</summary>
    public static JList Iterate(object? v, int line) => v switch
    {
        JList l => l,
        JDict d => d.Keys.Cast<object?>().ToList(),
        string s => StringChars(s),
        Undefined => [],
        _ => throw new TemplateException($"{TypeName(v)} is not iterable", line),
    };

    /// <summary>A string's characters as Python sees them: code points, so a surrogate pair stays one.</summary>
    public static JList StringChars(string s)
    {
        var chars = new JList();
        var e = StringInfoRunes(s);
        foreach (var r in e) chars.Add(r);
        return chars;
    }

    private static IEnumerable<string> StringInfoRunes(string s)
    {
        foreach (var rune in s.EnumerateRunes()) yield return rune.ToString();
    }

    /// <summary>tojson as transformers defines it: json.dumps(ensure_ascii=False), Python's separators, optional indent.</summary>
    public static string ToJson(object? v, int? indent, bool sortKeys, int line)
    {
        var b = new StringBuilder();
        WriteJson(b, v, indent, sortKeys, 0, line);
        return b.ToString();
    }

    private static void WriteJson(StringBuilder b, object? v, int? indent, bool sortKeys, int level, int line)
    {
        if (level > 100) throw new TemplateException("tojson: value nested too deeply", line);
        switch (v)
        {
            case null: b.Append("null"); break;
            case bool x: b.Append(x ? "true" : "false"); break;
            case long x: b.Append(x.ToString(CultureInfo.InvariantCulture)); break;
            case double x: b.Append(double.IsFinite(x) ? FloatRepr(x) : double.IsNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity"); break;
            case string s: JsonString(b, s); break;
            case JList l: Container(b, '[', ']', l.Select(item => (Key: (string?)null, Value: item)).ToList(), indent, sortKeys, level, line); break;
            case JDict d:
                var pairs = d.Select(p => (Key: (string?)p.Key, p.Value));
                if (sortKeys) pairs = pairs.OrderBy(p => p.Key, StringComparer.Ordinal);
                Container(b, '{', '}', pairs.ToList(), indent, sortKeys, level, line);
                break;
            case Namespace ns: WriteJson(b, ns.Attributes, indent, sortKeys, level, line); break;
            default: throw new TemplateException($"tojson: a {TypeName(v)} is not JSON", line);
        }
    }

    private static void Container(StringBuilder b, char open, char close, List<(string? Key, object? Value)> items, int? indent, bool sortKeys,
        int level, int line)
    {
        b.Append(open);
        if (items.Count == 0) { b.Append(close); return; }
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0) b.Append(indent is null ? ", " : ",");
            if (indent is not null) b.Append('\n').Append(' ', indent.Value * (level + 1));
            if (items[i].Key is { } key) { JsonString(b, key); b.Append(": "); }
            WriteJson(b, items[i].Value, indent, sortKeys, level + 1, line);
        }
        if (indent is not null) b.Append('\n').Append(' ', indent.Value * level);
        b.Append(close);
    }

    private static void JsonString(StringBuilder b, string s)
    {
        b.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                case '\b': b.Append("\\b"); break;
                case '\f': b.Append("\\f"); break;
                default:
                    if (c < 0x20) b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else b.Append(c);
                    break;
            }
        }
        b.Append('"');
    }
}

/// <summary>The loop variable inside a for loop.</summary>
internal sealed class LoopInfo(JList items)
{
    public int Index0 { get; set; }
    public JList Items { get; } = items;

    public object? Get(string name) => name switch
    {
        "index0" => (long)Index0,
        "index" => (long)Index0 + 1,
        "revindex0" => (long)(Items.Count - Index0 - 1),
        "revindex" => (long)(Items.Count - Index0),
        "first" => Index0 == 0,
        "last" => Index0 == Items.Count - 1,
        "length" => (long)Items.Count,
        "previtem" => Index0 > 0 ? Items[Index0 - 1] : new Undefined("loop.previtem"),
        "nextitem" => Index0 + 1 < Items.Count ? Items[Index0 + 1] : new Undefined("loop.nextitem"),
        "depth" => 1L,
        "depth0" => 0L,
        "cycle" => new TemplateFunction("loop.cycle", (args, _, line) =>
            args.Count == 0 ? throw new TemplateException("loop.cycle needs at least one value", line) : args[Index0 % args.Count]),
        _ => new Undefined("loop." + name),
    };
}
