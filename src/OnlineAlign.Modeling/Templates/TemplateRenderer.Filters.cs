using System.Globalization;
using JDict = System.Collections.Generic.OrderedDictionary<string, object?>;
using JList = System.Collections.Generic.List<object?>;

namespace OnlineAlign.Modeling.Templates;

/// <summary>Jinja's filters (value | name(args)) and tests (value is name arg) that chat templates use.</summary>
internal sealed partial class TemplateRenderer
{
    private static object? Arg(JList args, JDict kwargs, int index, string name, object? fallback = null) =>
        index < args.Count ? args[index] : kwargs.TryGetValue(name, out var value) ? value : fallback;

    private object? Filter(string name, object? value, JList args, JDict kwargs, int line)
    {
        switch (name)
        {
            case "default" or "d":
                bool boolean = TemplateValues.Truthy(Arg(args, kwargs, 1, "boolean", false));
                return value is Undefined || (boolean && !TemplateValues.Truthy(value)) ? Arg(args, kwargs, 0, "default_value", "") : value;
            case "safe": return value; // no autoescaping, as transformers renders
        }
        if (value is Undefined u && name is not ("length" or "count" or "string" or "items" or "list" or "join" or "trim"))
            throw new TemplateException($"'{u.Name}' is undefined (filter {name})", line);
        switch (name)
        {
            case "trim":
                return Arg(args, kwargs, 0, "chars") is string chars ? TemplateValues.Str(value).Trim(chars.ToCharArray()) : TemplateValues.Str(value).Trim();
            case "length" or "count":
                return value switch
                {
                    string s => (long)TemplateValues.StringChars(s).Count,
                    JList l => (long)l.Count,
                    JDict d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw new TemplateException($"a {TemplateValues.TypeName(value)} has no length", line),
                };
            case "string": return TemplateValues.Str(value);
            case "upper": return TemplateValues.Str(value).ToUpperInvariant();
            case "lower": return TemplateValues.Str(value).ToLowerInvariant();
            case "capitalize": return Capitalize(TemplateValues.Str(value));
            case "title": return Title(TemplateValues.Str(value));
            case "tojson":
                var indent = Arg(args, kwargs, 0, "indent");
                return TemplateValues.ToJson(value, indent is long n ? (int)n : null, TemplateValues.Truthy(Arg(args, kwargs, 99, "sort_keys", false)), line);
            case "first" or "last":
                var items = TemplateValues.Iterate(value, line);
                return items.Count == 0 ? new Undefined(name) : name == "first" ? items[0] : items[^1];
            case "join":
                var attribute = Arg(args, kwargs, 1, "attribute") as string;
                var parts = TemplateValues.Iterate(value, line)
                    .Select(item => TemplateValues.Str(attribute is null ? item : GetAttribute(item, attribute, line)));
                return Bounded(string.Join(TemplateValues.Str(Arg(args, kwargs, 0, "d", "")), parts), line);
            case "replace":
                return Replace(TemplateValues.Str(value), Arg(args, kwargs, 0, "old"), Arg(args, kwargs, 1, "new"), Arg(args, kwargs, 2, "count"), line);
            case "items":
                return value switch
                {
                    JDict d => d.Select(p => (object?)new JList { p.Key, p.Value }).ToList(),
                    Undefined => new JList(),
                    _ => throw new TemplateException($"items needs a dict, not {TemplateValues.TypeName(value)}", line),
                };
            case "list": return TemplateValues.Iterate(value, line).ToList();
            case "reverse":
                return value is string rs ? string.Concat(TemplateValues.StringChars(rs).Cast<string>().Reverse())
                    : Enumerable.Reverse(TemplateValues.Iterate(value, line)).ToList();
            case "selectattr" or "rejectattr":
                string attr = Arg(args, kwargs, 0, "attribute") as string ?? throw new TemplateException($"{name} needs an attribute name", line);
                return TemplateValues.Iterate(value, line)
                    .Where(item => Select(GetAttribute(item, attr, line), args.Skip(1).ToList(), line) == (name == "selectattr")).ToList();
            case "select" or "reject":
                return TemplateValues.Iterate(value, line).Where(item => Select(item, args, line) == (name == "select")).ToList();
            case "map":
                if (kwargs.TryGetValue("attribute", out var mapped))
                    return TemplateValues.Iterate(value, line)
                        .Select(item => GetAttribute(item, TemplateValues.Str(mapped), line) is Undefined
                            && kwargs.TryGetValue("default", out var fallback) ? fallback : GetAttribute(item, TemplateValues.Str(mapped), line)).ToList();
                string filter = Arg(args, kwargs, 0, "filter") as string ?? throw new TemplateException("map needs a filter name or attribute=", line);
                return TemplateValues.Iterate(value, line).Select(item => Filter(filter, item, args.Skip(1).ToList(), [], line)).ToList();
            case "unique":
                var seen = new JList();
                foreach (var item in TemplateValues.Iterate(value, line)) if (!seen.Any(s => TemplateValues.Equal(s, item))) seen.Add(item);
                return seen;
            case "sort":
                var sorted = TemplateValues.Iterate(value, line).ToList();
                var key = Arg(args, kwargs, 2, "attribute") as string;
                sorted.Sort((a, b) => TemplateValues.Compare(key is null ? a : GetAttribute(a, key, line), key is null ? b : GetAttribute(b, key, line), line));
                if (TemplateValues.Truthy(Arg(args, kwargs, 0, "reverse", false))) sorted.Reverse();
                return sorted;
            case "min" or "max":
                var all = TemplateValues.Iterate(value, line);
                if (all.Count == 0) return new Undefined(name);
                return all.Aggregate((a, b) => (TemplateValues.Compare(a, b, line) <= 0) == (name == "min") ? a : b);
            case "sum": return TemplateValues.Iterate(value, line).Aggregate(Arg(args, kwargs, 1, "start", 0L), (a, b) => Binary("+", a, b, line));
            case "abs": return value is long integer ? (object)Math.Abs(integer) : Math.Abs(TemplateValues.ToDouble(value));
            case "int":
                return value switch
                {
                    long or bool => (long)TemplateValues.ToDouble(value),
                    double x => (long)Math.Truncate(x),
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long parsed) => parsed,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) => (long)Math.Truncate(parsed),
                    _ => Arg(args, kwargs, 0, "default", 0L),
                };
            case "float":
                return value switch
                {
                    long or bool or double => TemplateValues.ToDouble(value),
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) => parsed,
                    _ => Arg(args, kwargs, 0, "default", 0.0),
                };
            case "round":
                int digits = Arg(args, kwargs, 0, "precision", 0L) is long p ? (int)p : 0;
                return Math.Round(TemplateValues.ToDouble(value), digits, MidpointRounding.ToEven);
            case "indent":
                int width = Arg(args, kwargs, 0, "width", 4L) is long w ? (int)w : 4;
                var lines = TemplateValues.Str(value).Split('\n');
                bool first = TemplateValues.Truthy(Arg(args, kwargs, 1, "first", false)), blank = TemplateValues.Truthy(Arg(args, kwargs, 2, "blank", false));
                return Bounded(string.Join("\n",
                    lines.Select((text, i) => (i == 0 && !first) || (!blank && text.Trim().Length == 0) ? text : new string(' ', width) + text)), line);
            default:
                throw new TemplateException($"unknown filter '{name}'", line);
        }
    }

    /// <summary>select/selectattr: the named test (with its arguments), or truthiness when none is named.</summary>
    private static bool Select(object? value, JList testArgs, int line) =>
        testArgs.Count == 0 ? TemplateValues.Truthy(value)
        : testArgs[0] is string test ? Test(test, value, testArgs.Skip(1).ToList(), line)
        : throw new TemplateException("the test to select by must be named by a string", line);

    private static string Replace(string s, object? oldValue, object? newValue, object? count, int line)
    {
        if (oldValue is not string from || newValue is not string to) throw new TemplateException("replace needs two strings", line);
        long limit = count is long c ? c : -1;
        if (limit < 0)
            return from.Length == 0 ? string.Join(to, TemplateValues.StringChars(s).Cast<string>().Prepend("").Append(""))
                : s.Replace(from, to, StringComparison.Ordinal);
        var result = new System.Text.StringBuilder();
        int pos = 0;
        for (long n = 0; n < limit && from.Length > 0; n++)
        {
            int at = s.IndexOf(from, pos, StringComparison.Ordinal);
            if (at < 0) break;
            result.Append(s, pos, at - pos).Append(to);
            pos = at + from.Length;
        }
        return result.Append(s, pos, s.Length - pos).ToString();
    }

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    private static string Title(string s)
    {
        var chars = s.ToCharArray();
        bool previousLetter = false;
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = previousLetter ? char.ToLowerInvariant(chars[i]) : char.ToUpperInvariant(chars[i]);
            previousLetter = char.IsLetter(chars[i]);
        }
        return new string(chars);
    }

    private static bool Test(string name, object? value, JList args, int line)
    {
        object? Other() => args.Count > 0 ? args[0] : throw new TemplateException($"test '{name}' needs an argument", line);
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "string" => value is string,
            "number" => value is long or double or bool,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "mapping" => value is JDict,
            "iterable" => value is string or JList or JDict or Undefined,
            "sequence" => value is string or JList or JDict,
            "callable" => value is TemplateFunction,
            "equalto" or "eq" or "==" => TemplateValues.Equal(value, Other()),
            "ne" or "!=" => !TemplateValues.Equal(value, Other()),
            "lt" or "lessthan" or "<" => TemplateValues.Compare(value, Other(), line) < 0,
            "le" or "<=" => TemplateValues.Compare(value, Other(), line) <= 0,
            "gt" or "greaterthan" or ">" => TemplateValues.Compare(value, Other(), line) > 0,
            "ge" or ">=" => TemplateValues.Compare(value, Other(), line) >= 0,
            "sameas" => Other() is var other && (value is null ? other is null : value is bool b ? other is bool ob && b == ob : ReferenceEquals(value, other)),
            "in" => Contains(Other(), value, line),
            "odd" => value is long o ? o % 2 != 0 : throw new TemplateException("odd needs an integer", line),
            "even" => value is long e ? e % 2 == 0 : throw new TemplateException("even needs an integer", line),
            "divisibleby" => value is long v && Other() is long by && by != 0 ? v % by == 0 : throw new TemplateException("divisibleby needs integers", line),
            // "is lower" means unchanged by lowering: an exact comparison, not the case-insensitive one CA1862 assumes.
#pragma warning disable CA1862
            "lower" => value is string ls && ls == ls.ToLowerInvariant(),
            "upper" => value is string us && us == us.ToUpperInvariant(),
#pragma warning restore CA1862
            _ => throw new TemplateException($"unknown test '{name}'", line),
        };
    }
}
