using System.Diagnostics;
using System.Text;
using JDict = System.Collections.Generic.OrderedDictionary<string, object?>;
using JList = System.Collections.Generic.List<object?>;

namespace OnlineAlign.Modeling.Templates;

/// <summary>
/// Runs a parsed template: statements here, expressions, filters, tests and methods in the other parts of this class.
/// One instance per render; it counts loop iterations, output, macro depth and time against <see cref="TemplateLimits"/>.
/// </summary>
internal sealed partial class TemplateRenderer
{
    private enum Flow { Normal, Break, Continue }

    /// <summary>A variable scope: the template's, a loop iteration's or a macro call's (sets inside do not leak out).</summary>
    private sealed class Scope(Scope? parent)
    {
        private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);
        private readonly Scope? _parent = parent;

        public bool TryGet(string name, out object? value)
        {
            for (var s = this; s is not null; s = s._parent)
                if (s._vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }

        public void Set(string name, object? value) => _vars[name] = value;
    }

    private readonly TemplateLimits _limits;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private StringBuilder _out = new();
    private long _iterations;
    private int _callDepth;

    private TemplateRenderer(TemplateLimits limits) => _limits = limits;

    public static string Render(IReadOnlyList<Node> nodes, JDict variables, TemplateLimits limits)
    {
        var renderer = new TemplateRenderer(limits);
        var scope = new Scope(renderer.Globals());
        foreach (var (name, value) in variables) scope.Set(name, value);
        renderer.Exec(nodes, scope);
        return renderer._out.ToString();
    }

    private Scope Globals()
    {
        var globals = new Scope(null);
        foreach (var function in GlobalFunctions()) globals.Set(function.Name, function);
        return globals;
    }

    private void CheckTime(int line)
    {
        if (_clock.Elapsed >= _limits.MaxTime) throw new TemplateException($"rendering took longer than {_limits.MaxTime.TotalSeconds:0.#} s", line);
    }

    private void Write(string text, int line)
    {
        if (_out.Length + (long)text.Length > _limits.MaxOutputChars)
            throw new TemplateException($"output is longer than {_limits.MaxOutputChars} characters", line);
        _out.Append(text);
    }

    /// <summary>A string built while rendering must respect the output limit too (a string doubled in a loop).</summary>
    private string Bounded(string value, int line) =>
        value.Length > _limits.MaxOutputChars ? throw new TemplateException($"a string longer than {_limits.MaxOutputChars} characters", line) : value;

    private void CountIterations(long count, int line)
    {
        _iterations += count;
        if (_iterations > _limits.MaxLoopIterations) throw new TemplateException($"more than {_limits.MaxLoopIterations} loop iterations", line);
        CheckTime(line);
    }

    private string Capture(IReadOnlyList<Node> body, Scope scope)
    {
        var saved = _out;
        _out = new StringBuilder();
        try
        {
            Exec(body, scope);
            return _out.ToString();
        }
        finally { _out = saved; }
    }

    private Flow Exec(IReadOnlyList<Node> nodes, Scope scope)
    {
        foreach (var node in nodes)
        {
            CheckTime(node.Line);
            var flow = node switch
            {
                TextNode t => Do(() => Write(t.Text, t.Line)),
                OutputNode o => Do(() => Write(TemplateValues.Str(Eval(o.Value, scope)), o.Line)),
                IfNode i => If(i, scope),
                ForNode f => For(f, scope),
                SetNode s => Do(() => Set(s, scope)),
                MacroNode m => Do(() => scope.Set(m.Name, Macro(m, scope))),
                BreakNode => Flow.Break,
                ContinueNode => Flow.Continue,
                _ => throw new TemplateException($"unknown statement {node.GetType().Name}", node.Line),
            };
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private static Flow Do(Action action) { action(); return Flow.Normal; }

    private Flow If(IfNode node, Scope scope)
    {
        foreach (var (condition, body) in node.Branches)
            if (TemplateValues.Truthy(Eval(condition, scope))) return Exec(body, scope);
        return node.Else is null ? Flow.Normal : Exec(node.Else, scope);
    }

    private Flow For(ForNode node, Scope scope)
    {
        var items = TemplateValues.Iterate(Eval(node.Iterable, scope), node.Line);
        if (node.Filter is not null)
            items = items.Where(item => { var s = new Scope(scope); Bind(node, s, item); return TemplateValues.Truthy(Eval(node.Filter, s)); }).ToList();
        var loop = new LoopInfo(items);
        for (int i = 0; i < items.Count; i++)
        {
            CountIterations(1, node.Line);
            var inner = new Scope(scope);
            Bind(node, inner, items[i]);
            loop.Index0 = i;
            inner.Set("loop", loop);
            if (Exec(node.Body, inner) == Flow.Break) break;
        }
        if (items.Count == 0 && node.Else is not null) return Exec(node.Else, scope);
        return Flow.Normal;
    }

    private static void Bind(ForNode node, Scope scope, object? item)
    {
        if (node.Targets.Count == 1) { scope.Set(node.Targets[0], item); return; }
        Unpack(node.Targets, item, node.Line, scope);
    }

    private static void Unpack(IReadOnlyList<string> targets, object? value, int line, Scope scope)
    {
        if (value is not JList parts || parts.Count != targets.Count)
            throw new TemplateException($"cannot unpack {TemplateValues.TypeName(value)} into {targets.Count} names", line);
        for (int i = 0; i < targets.Count; i++) scope.Set(targets[i], parts[i]);
    }

    private void Set(SetNode node, Scope scope)
    {
        object? value = node.Value is not null ? Eval(node.Value, scope) : Capture(node.Body!, scope);
        if (node.Attribute is not null)
        {
            if (!scope.TryGet(node.Targets[0], out var target) || target is not Namespace ns)
                throw new TemplateException($"cannot set {node.Targets[0]}.{node.Attribute}: {node.Targets[0]} is not a namespace()", node.Line);
            ns.Attributes[node.Attribute] = value;
        }
        else if (node.Targets.Count > 1) Unpack(node.Targets, value, node.Line, scope);
        else scope.Set(node.Targets[0], value);
    }

    private TemplateFunction Macro(MacroNode node, Scope definition) => new(node.Name, (args, kwargs, line) =>
    {
        if (args.Count > node.Parameters.Count)
            throw new TemplateException($"macro {node.Name} takes {node.Parameters.Count} arguments, given {args.Count}", line);
        if (++_callDepth > _limits.MaxDepth) throw new TemplateException($"macro calls nested deeper than {_limits.MaxDepth}", line);
        try
        {
            var scope = new Scope(definition);
            for (int i = 0; i < node.Parameters.Count; i++)
            {
                string name = node.Parameters[i];
                object? value = i < args.Count ? args[i]
                    : kwargs.TryGetValue(name, out var given) ? given
                    : node.Defaults[i] is { } fallback ? Eval(fallback, scope)
                    : new Undefined(name);
                scope.Set(name, value);
            }
            foreach (var key in kwargs.Keys)
                if (!node.Parameters.Contains(key)) throw new TemplateException($"macro {node.Name} has no parameter '{key}'", line);
            return Capture(node.Body, scope);
        }
        finally { _callDepth--; }
    });
}
