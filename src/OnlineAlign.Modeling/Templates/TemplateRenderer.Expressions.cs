using JDict = System.Collections.Generic.OrderedDictionary<string, object?>;
using JList = System.Collections.Generic.List<object?>;

namespace OnlineAlign.Modeling.Templates;

/// <summary>Expressions: names, attribute and item lookup, slices, calls, operators, as Jinja (on Python) evaluates them.</summary>
internal sealed partial class TemplateRenderer
{
    private object? Eval(Expr expr, Scope scope) => expr switch
    {
        LiteralExpr l => l.Value,
        NameExpr n => scope.TryGet(n.Name, out var value) ? value : new Undefined(n.Name),
        AttributeExpr a => GetAttribute(Eval(a.Target, scope), a.Name, a.Line),
        IndexExpr i => GetItem(Eval(i.Target, scope), Eval(i.Key, scope), i.Line),
        SliceExpr s => Slice(Eval(s.Target, scope), Optional(s.Start, scope), Optional(s.Stop, scope), Optional(s.Step, scope), s.Line),
        CallExpr c => Call(c, scope),
        FilterExpr f => Filter(f.Name, Eval(f.Value, scope), EvalAll(f.Args, scope), EvalKwargs(f.Kwargs, scope), f.Line),
        TestExpr t => Test(t.Name, Eval(t.Value, scope), EvalAll(t.Args, scope), t.Line) != t.Negated,
        UnaryExpr u => Unary(u, scope),
        BinaryExpr { Operator: "and" } b => Eval(b.Left, scope) is var left && !TemplateValues.Truthy(left) ? left : Eval(b.Right, scope),
        BinaryExpr { Operator: "or" } b => Eval(b.Left, scope) is var left && TemplateValues.Truthy(left) ? left : Eval(b.Right, scope),
        BinaryExpr b => Binary(b.Operator, Eval(b.Left, scope), Eval(b.Right, scope), b.Line),
        CompareExpr c => CompareChain(c, scope),
        ConditionalExpr c => TemplateValues.Truthy(Eval(c.Condition, scope)) ? Eval(c.Then, scope) : c.Else is null ? new Undefined("else")
            : Eval(c.Else, scope),
        ListExpr l => EvalAll(l.Items, scope),
        DictExpr d => Dict(d, scope),
        _ => throw new TemplateException($"unknown expression {expr.GetType().Name}", expr.Line),
    };

    private object? Optional(Expr? expr, Scope scope) => expr is null ? null : Eval(expr, scope);

    private JList EvalAll(IReadOnlyList<Expr> exprs, Scope scope) => exprs.Select(e => Eval(e, scope)).ToList();

    private JDict EvalKwargs(IReadOnlyList<(string Name, Expr Value)> kwargs, Scope scope)
    {
        var dict = new JDict();
        foreach (var (name, value) in kwargs) dict[name] = Eval(value, scope);
        return dict;
    }

    private JDict Dict(DictExpr d, Scope scope)
    {
        var dict = new JDict();
        foreach (var (key, value) in d.Pairs)
            dict[Eval(key, scope) as string ?? throw new TemplateException("dict keys must be strings", d.Line)] = Eval(value, scope);
        return dict;
    }

    private object? Call(CallExpr c, Scope scope)
    {
        var callee = Eval(c.Callee, scope);
        var args = EvalAll(c.Args, scope);
        var kwargs = EvalKwargs(c.Kwargs, scope);
        return callee switch
        {
            TemplateFunction f => f.Invoke(args, kwargs, c.Line),
            Undefined u => throw new TemplateException($"'{u.Name}' is undefined and cannot be called", c.Line),
            _ => throw new TemplateException($"a {TemplateValues.TypeName(callee)} cannot be called", c.Line),
        };
    }

    /// <summary>x.name: Jinja tries the attribute (a method) first, then the item; missing is undefined.</summary>
    private object? GetAttribute(object? target, string name, int line) => target switch
    {
        Undefined u => throw new TemplateException($"'{u.Name}' is undefined, so it has no attribute '{name}'", line),
        JDict d => (object?)DictMethod(d, name) ?? (d.TryGetValue(name, out var value) ? value : new Undefined(name)),
        string s => (object?)StringMethod(s, name) ?? new Undefined(name),
        Namespace ns => ns.Attributes.TryGetValue(name, out var value) ? value : new Undefined(name),
        LoopInfo loop => loop.Get(name),
        _ => new Undefined(name),
    };

    /// <summary>x[key]: Jinja tries the item first, then the attribute; missing is undefined.</summary>
    private object? GetItem(object? target, object? key, int line)
    {
        switch (target)
        {
            case Undefined u:
                throw new TemplateException($"'{u.Name}' is undefined, so it has no item {TemplateValues.Repr(key)}", line);
            case JDict d when key is string k:
                return d.TryGetValue(k, out var value) ? value : GetAttribute(d, k, line);
            case JList l when key is long or bool:
                long i = (long)TemplateValues.ToDouble(key);
                if (i < 0) i += l.Count;
                return i >= 0 && i < l.Count ? l[(int)i] : new Undefined($"[{key}]");
            case string s when key is long or bool:
                var chars = TemplateValues.StringChars(s);
                long j = (long)TemplateValues.ToDouble(key);
                if (j < 0) j += chars.Count;
                return j >= 0 && j < chars.Count ? chars[(int)j] : new Undefined($"[{key}]");
            default:
                return key is string name ? GetAttribute(target, name, line) : new Undefined($"[{TemplateValues.Repr(key)}]");
        }
    }

    /// <summary>Python's seq[start:stop:step] on lists and strings.</summary>
    private static object? Slice(object? target, object? start, object? stop, object? step, int line)
    {
        JList items = target switch
        {
            JList l => l,
            string s => TemplateValues.StringChars(s),
            _ => throw new TemplateException($"a {TemplateValues.TypeName(target)} cannot be sliced", line),
        };
        long n = items.Count;
        long by = step is null ? 1 : step is long st ? st : throw new TemplateException("slice step must be an integer", line);
        if (by == 0) throw new TemplateException("slice step cannot be zero", line);
        long Bound(object? v, long fallback)
        {
            if (v is null) return fallback;
            if (v is not long x) throw new TemplateException("slice bounds must be integers", line);
            if (x < 0) x += n;
            return by > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long from = Bound(start, by > 0 ? 0 : n - 1), to = Bound(stop, by > 0 ? n : -1);
        var result = new JList();
        for (long i = from; by > 0 ? i < to : i > to; i += by) result.Add(items[(int)i]);
        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    private object? Unary(UnaryExpr u, Scope scope)
    {
        var value = Eval(u.Operand, scope);
        return u.Operator switch
        {
            "not" => !TemplateValues.Truthy(value),
            "-" when value is long l => checked(-l),
            "-" when value is double or bool => -TemplateValues.ToDouble(value),
            "+" when TemplateValues.IsNumber(value) => value,
            _ => throw new TemplateException($"bad operand {TemplateValues.TypeName(value)} for unary {u.Operator}", u.Line),
        };
    }

    private bool CompareChain(CompareExpr c, Scope scope)
    {
        var left = Eval(c.First, scope);
        foreach (var (op, operand) in c.Rest)
        {
            var right = Eval(operand, scope);
            bool holds = op switch
            {
                "==" => TemplateValues.Equal(left, right),
                "!=" => !TemplateValues.Equal(left, right),
                "<" => TemplateValues.Compare(left, right, c.Line) < 0,
                "<=" => TemplateValues.Compare(left, right, c.Line) <= 0,
                ">" => TemplateValues.Compare(left, right, c.Line) > 0,
                ">=" => TemplateValues.Compare(left, right, c.Line) >= 0,
                "in" => Contains(right, left, c.Line),
                "not in" => !Contains(right, left, c.Line),
                _ => throw new TemplateException($"unknown comparison {op}", c.Line),
            };
            if (!holds) return false;
            left = right;
        }
        return true;
    }

    private static bool Contains(object? container, object? item, int line) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : throw new TemplateException($"'in <string>' needs a string on the left, not {TemplateValues.TypeName(item)}", line),
        JList l => l.Any(x => TemplateValues.Equal(x, item)),
        JDict d => item is string key && d.ContainsKey(key),
        Undefined => false,
        _ => throw new TemplateException($"'in' needs a string, list or dict on the right, not {TemplateValues.TypeName(container)}", line),
    };

    private object? Binary(string op, object? a, object? b, int line)
    {
        try
        {
            switch (op)
            {
                case "~": return Bounded(TemplateValues.Str(a) + TemplateValues.Str(b), line);
                case "+" when a is string sa && b is string sb: return Bounded(sa + sb, line);
                case "+" when a is JList la && b is JList lb: return CheckedList(la.Concat(lb).ToList(), line);
                case "*" when a is string s && b is long times: return Repeat(s, times, line);
                case "*" when a is long times && b is string s: return Repeat(s, times, line);
                case "*" when a is JList l && b is long times:
                    if (times <= 0) return new JList();
                    if ((double)l.Count * times > _limits.MaxLoopIterations)
                        throw new TemplateException($"a list longer than {_limits.MaxLoopIterations} items", line);
                    return Enumerable.Repeat(l, (int)times).SelectMany(item => item).ToList();
            }
            if (!TemplateValues.IsNumber(a) || !TemplateValues.IsNumber(b))
                throw new TemplateException($"unsupported operand types for {op}: {TemplateValues.TypeName(a)} and {TemplateValues.TypeName(b)}", line);
            bool integers = a is long or bool && b is long or bool;
            long x = integers ? (long)TemplateValues.ToDouble(a) : 0, y = integers ? (long)TemplateValues.ToDouble(b) : 0;
            double dx = TemplateValues.ToDouble(a), dy = TemplateValues.ToDouble(b);
            if (op is "/" or "//" or "%" && dy == 0) throw new TemplateException("division by zero", line);
            return op switch
            {
                "+" => integers ? (object)checked(x + y) : dx + dy,
                "-" => integers ? (object)checked(x - y) : dx - dy,
                "*" => integers ? (object)checked(x * y) : dx * dy,
                "/" => (object)(dx / dy),
                "//" => integers ? (object)FloorDiv(x, y) : Math.Floor(dx / dy),
                "%" => integers ? (object)(x - FloorDiv(x, y) * y) : dx - Math.Floor(dx / dy) * dy,
                "**" => integers && y >= 0 ? (object)IntPow(x, y) : Math.Pow(dx, dy),
                _ => throw new TemplateException($"unknown operator {op}", line),
            };
        }
        catch (OverflowException) { throw new TemplateException($"integer overflow in {op}", line); }
    }

    private static long FloorDiv(long x, long y) => x / y - ((x % y != 0) && ((x < 0) != (y < 0)) ? 1 : 0);

    private static long IntPow(long x, long y)
    {
        if (x == -1) return y % 2 == 0 ? 1 : -1;
        long result = 1;
        for (long i = 0; i < y; i++) { result = checked(result * x); if (result == 0 || result == 1 && x == 1) break; }
        return result;
    }

    private string Repeat(string s, long times, int line)
    {
        if (times <= 0 || s.Length == 0) return "";
        if (s.Length * times > _limits.MaxOutputChars) throw new TemplateException($"a string longer than {_limits.MaxOutputChars} characters", line);
        return string.Concat(Enumerable.Repeat(s, (int)times));
    }

    private JList CheckedList(JList list, int line) =>
        list.Count > _limits.MaxLoopIterations ? throw new TemplateException($"a list longer than {_limits.MaxLoopIterations} items", line) : list;
}
