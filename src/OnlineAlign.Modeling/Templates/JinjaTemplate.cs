using JDict = System.Collections.Generic.OrderedDictionary<string, object?>;

namespace OnlineAlign.Modeling.Templates;

/// <summary>
/// A Jinja template, parsed once and rendered many times, with the whitespace settings transformers uses for chat
/// templates (trim_blocks, lstrip_blocks). The interpreter is sandboxed: a template sees only the values it is given
/// (strings, numbers, lists, dicts) and a few globals, never .NET objects, and every render is bounded by
/// <see cref="TemplateLimits"/>. Errors are <see cref="TemplateException"/>s naming the template line.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Node> _nodes;
    private readonly TemplateLimits _limits;

    private JinjaTemplate(IReadOnlyList<Node> nodes, TemplateLimits limits) { _nodes = nodes; _limits = limits; }

    public static JinjaTemplate Parse(string source, TemplateLimits? limits = null)
    {
        limits ??= TemplateLimits.Default;
        if (source.Length > limits.MaxSourceChars) throw new TemplateException($"the template is longer than {limits.MaxSourceChars} characters", 0);
        return new JinjaTemplate(TemplateParser.Parse(TemplateLexer.Tokenize(source), limits.MaxDepth), limits);
    }

    /// <summary>
    /// Renders with the given variables: strings, numbers, booleans, null, lists and string-keyed dictionaries of
    /// them, or System.Text.Json nodes.
    /// </summary>
    public string Render(IEnumerable<KeyValuePair<string, object?>> variables)
    {
        var values = new JDict();
        foreach (var (name, value) in variables) values[name] = TemplateValues.From(value);
        return TemplateRenderer.Render(_nodes, values, _limits);
    }
}
