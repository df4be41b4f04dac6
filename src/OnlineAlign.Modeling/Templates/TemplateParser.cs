namespace OnlineAlign.Modeling.Templates;

/// <summary>
/// Recursive-descent parser for the Jinja subset chat templates use, with Jinja's precedence: a conditional
/// (x if c else y) over or, and, not, comparisons (==, !=, &lt;, in, not in ...), + -, ~, * / // %, **, unary - +,
/// and filters (|) and tests (is) binding tightest after the primary and its .attr, [index], [a:b:c] and calls.
/// </summary>
internal sealed class TemplateParser
{
    private static readonly HashSet<string> Comparisons = ["==", "!=", "<", "<=", ">", ">="];

    private readonly List<Token> _t;
    private readonly int _maxDepth;
    private int _p;
    private int _depth;

    private TemplateParser(List<Token> tokens, int maxDepth) { _t = tokens; _maxDepth = maxDepth; }

    public static IReadOnlyList<Node> Parse(List<Token> tokens, int maxDepth)
    {
        var parser = new TemplateParser(tokens, maxDepth);
        var (body, end) = parser.Body([]);
        if (end is not null) throw new TemplateException($"unexpected {{% {end} %}}", parser.Peek.Line);
        return body;
    }

    private Token Peek => _t[_p];
    private Token PeekAt(int offset) => _t[Math.Min(_p + offset, _t.Count - 1)];
    private Token Next() => _t[_p++];
    private bool IsOp(string op) => Peek.Kind == TokenKind.Operator && Peek.Text == op;
    private bool IsName(string name) => Peek.Kind == TokenKind.Name && Peek.Text == name;

    private Token Expect(TokenKind kind, string? text = null)
    {
        var token = Peek;
        if (token.Kind != kind || (text is not null && token.Text != text))
            throw new TemplateException($"expected {text ?? kind.ToString()} but found {Describe(token)}", token.Line);
        return Next();
    }

    private static string Describe(Token t) => t.Kind switch
    {
        TokenKind.End => "the end of the template",
        TokenKind.BlockEnd => "the end of the tag",
        TokenKind.VarEnd => "}}",
        TokenKind.Text => "text",
        _ => $"'{t.Text}'",
    };

    private void Enter(int line)
    {
        if (++_depth > _maxDepth) throw new TemplateException($"nesting deeper than {_maxDepth} levels", line);
    }

    /// <summary>Statements until one of <paramref name="ends"/> opens a tag; returns that tag's name (consumed) or null at the end.</summary>
    private (List<Node> Body, string? End) Body(string[] ends)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var token = Peek;
            switch (token.Kind)
            {
                case TokenKind.End:
                    if (ends.Length > 0) throw new TemplateException($"missing {{% {ends[^1]} %}}", token.Line);
                    return (nodes, null);
                case TokenKind.Text:
                    Next();
                    nodes.Add(new TextNode(token.Text, token.Line));
                    break;
                case TokenKind.VarBegin:
                    Next();
                    nodes.Add(new OutputNode(Expression(), token.Line));
                    Expect(TokenKind.VarEnd);
                    break;
                case TokenKind.BlockBegin:
                    Next();
                    var name = Expect(TokenKind.Name);
                    if (ends.Contains(name.Text)) return (nodes, name.Text);
                    nodes.Add(Statement(name));
                    break;
                default:
                    throw new TemplateException($"unexpected {Describe(token)}", token.Line);
            }
        }
    }

    private Node Statement(Token name)
    {
        Enter(name.Line);
        try
        {
            return name.Text switch
            {
                "if" => If(name.Line),
                "for" => For(name.Line),
                "set" => Set(name.Line),
                "macro" => Macro(name.Line),
                "break" => EndTag(new BreakNode(name.Line)),
                "continue" => EndTag(new ContinueNode(name.Line)),
                "generation" => Generation(),
                _ => throw new TemplateException($"unknown tag '{name.Text}'", name.Line),
            };
        }
        finally { _depth--; }
    }

    private T EndTag<T>(T node) { Expect(TokenKind.BlockEnd); return node; }

    private IfNode If(int line)
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        var condition = Expression();
        Expect(TokenKind.BlockEnd);
        while (true)
        {
            var (body, end) = Body(["elif", "else", "endif"]);
            branches.Add((condition, body));
            if (end == "elif") { condition = Expression(); Expect(TokenKind.BlockEnd); continue; }
            if (end == "else")
            {
                Expect(TokenKind.BlockEnd);
                var (elseBody, _) = Body(["endif"]);
                Expect(TokenKind.BlockEnd);
                return new IfNode(branches, elseBody, line);
            }
            Expect(TokenKind.BlockEnd);
            return new IfNode(branches, null, line);
        }
    }

    private ForNode For(int line)
    {
        var targets = new List<string> { Expect(TokenKind.Name).Text };
        while (IsOp(",")) { Next(); targets.Add(Expect(TokenKind.Name).Text); }
        Expect(TokenKind.Name, "in");
        var iterable = Conditional(allowIf: false);
        Expr? filter = null;
        if (IsName("if")) { Next(); filter = Expression(); }
        if (IsName("recursive")) throw new TemplateException("recursive loops are not supported", Peek.Line);
        Expect(TokenKind.BlockEnd);
        var (body, end) = Body(["else", "endfor"]);
        List<Node>? elseBody = null;
        if (end == "else") { Expect(TokenKind.BlockEnd); (elseBody, _) = Body(["endfor"]); }
        Expect(TokenKind.BlockEnd);
        return new ForNode(targets, iterable, filter, body, elseBody, line);
    }

    private SetNode Set(int line)
    {
        var targets = new List<string> { Expect(TokenKind.Name).Text };
        string? attribute = null;
        if (IsOp(".")) { Next(); attribute = Expect(TokenKind.Name).Text; }
        else while (IsOp(",")) { Next(); targets.Add(Expect(TokenKind.Name).Text); }
        if (IsOp("="))
        {
            Next();
            var value = Expression();
            Expect(TokenKind.BlockEnd);
            return new SetNode(targets, attribute, value, null, line);
        }
        if (attribute is not null || targets.Count > 1) throw new TemplateException("a block set assigns one plain name", line);
        Expect(TokenKind.BlockEnd);
        var (body, _) = Body(["endset"]);
        Expect(TokenKind.BlockEnd);
        return new SetNode(targets, null, null, body, line);
    }

    private MacroNode Macro(int line)
    {
        string name = Expect(TokenKind.Name).Text;
        var parameters = new List<string>();
        var defaults = new List<Expr?>();
        Expect(TokenKind.Operator, "(");
        while (!IsOp(")"))
        {
            parameters.Add(Expect(TokenKind.Name).Text);
            if (IsOp("=")) { Next(); defaults.Add(Expression()); }
            else if (defaults.Any(d => d is not null))
                throw new TemplateException($"macro {name}: a parameter without a default follows one with a default", line);
            else defaults.Add(null);
            if (!IsOp(")")) Expect(TokenKind.Operator, ",");
        }
        Next();
        Expect(TokenKind.BlockEnd);
        var (body, _) = Body(["endmacro"]);
        Expect(TokenKind.BlockEnd);
        return new MacroNode(name, parameters, defaults, body, line);
    }

    /// <summary>transformers' {% generation %} marks the assistant's tokens for a mask; the text is unchanged.</summary>
    private IfNode Generation()
    {
        int line = Expect(TokenKind.BlockEnd).Line;
        var (body, _) = Body(["endgeneration"]);
        Expect(TokenKind.BlockEnd);
        return new IfNode([(new LiteralExpr(true, line), body)], null, line);
    }

    // ---- expressions ----

    public Expr Expression() => Conditional(allowIf: true);

    private Expr Conditional(bool allowIf)
    {
        Enter(Peek.Line);
        try
        {
            var value = Or();
            while (allowIf && IsName("if"))
            {
                int line = Next().Line;
                var condition = Or();
                Expr? otherwise = null;
                if (IsName("else")) { Next(); otherwise = Conditional(true); }
                value = new ConditionalExpr(condition, value, otherwise, line);
            }
            return value;
        }
        finally { _depth--; }
    }

    private Expr Or()
    {
        var left = And();
        while (IsName("or")) { int line = Next().Line; left = new BinaryExpr("or", left, And(), line); }
        return left;
    }

    private Expr And()
    {
        var left = Not();
        while (IsName("and")) { int line = Next().Line; left = new BinaryExpr("and", left, Not(), line); }
        return left;
    }

    private Expr Not()
    {
        if (IsName("not")) { int line = Next().Line; return new UnaryExpr("not", Not(), line); }
        return Compare();
    }

    private Expr Compare()
    {
        var first = Additive();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Peek.Kind == TokenKind.Operator && Comparisons.Contains(Peek.Text)) rest.Add((Next().Text, Additive()));
            else if (IsName("in")) { Next(); rest.Add(("in", Additive())); }
            else if (IsName("not") && PeekAt(1) is { Kind: TokenKind.Name, Text: "in" }) { Next(); Next(); rest.Add(("not in", Additive())); }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, first.Line);
    }

    private Expr Additive()
    {
        var left = Concat();
        while (IsOp("+") || IsOp("-")) { var op = Next(); left = new BinaryExpr(op.Text, left, Concat(), op.Line); }
        return left;
    }

    private Expr Concat()
    {
        var left = Multiplicative();
        while (IsOp("~")) { var op = Next(); left = new BinaryExpr("~", left, Multiplicative(), op.Line); }
        return left;
    }

    private Expr Multiplicative()
    {
        var left = Power();
        while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) { var op = Next(); left = new BinaryExpr(op.Text, left, Power(), op.Line); }
        return left;
    }

    private Expr Power()
    {
        var left = Unary();
        while (IsOp("**")) { var op = Next(); left = new BinaryExpr("**", left, Unary(), op.Line); }
        return left;
    }

    private Expr Unary()
    {
        if (IsOp("-") || IsOp("+"))
        {
            var op = Next();
            Enter(op.Line);
            try { return FiltersAndTests(new UnaryExpr(op.Text, Unary(), op.Line)); }
            finally { _depth--; }
        }
        return FiltersAndTests(Postfix(Primary()));
    }

    private Expr FiltersAndTests(Expr value)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                int line = Next().Line;
                string name = Expect(TokenKind.Name).Text;
                var (args, kwargs) = IsOp("(") ? Arguments() : ([], []);
                value = Postfix(new FilterExpr(value, name, args, kwargs, line));
            }
            else if (IsName("is"))
            {
                int line = Next().Line;
                bool negated = IsName("not");
                if (negated) Next();
                string name = Expect(TokenKind.Name).Text;
                var args = new List<Expr>();
                if (IsOp("(")) args.AddRange(Arguments().Args);
                else if (StartsTestArgument()) args.Add(Postfix(Primary()));
                value = new TestExpr(value, name, args, negated, line);
            }
            else return value;
        }
    }

    /// <summary>x is equalto 3, x is sameas false: a test takes one argument without parentheses, as in Jinja.</summary>
    private bool StartsTestArgument() => Peek.Kind switch
    {
        TokenKind.String or TokenKind.Integer or TokenKind.Float => true,
        TokenKind.Name => Peek.Text is not ("else" or "or" or "and" or "if" or "in" or "not" or "is"),
        TokenKind.Operator => Peek.Text is "[" or "{",
        _ => false,
    };

    private Expr Postfix(Expr value)
    {
        while (true)
        {
            if (IsOp("."))
            {
                int line = Next().Line;
                var member = Next();
                value = member.Kind switch
                {
                    TokenKind.Name => new AttributeExpr(value, member.Text, line),
                    TokenKind.Integer => new IndexExpr(value, new LiteralExpr(member.Value, line), line),
                    _ => throw new TemplateException($"expected a name after '.' but found {Describe(member)}", line),
                };
            }
            else if (IsOp("[")) value = Subscript(value);
            else if (IsOp("("))
            {
                int line = Peek.Line;
                var (args, kwargs) = Arguments();
                value = new CallExpr(value, args, kwargs, line);
            }
            else return value;
        }
    }

    private Expr Subscript(Expr target)
    {
        int line = Next().Line;
        Expr? start = null, stop = null, step = null;
        if (!IsOp(":")) start = Expression();
        if (IsOp("]")) { Next(); return new IndexExpr(target, start!, line); }
        Expect(TokenKind.Operator, ":");
        if (!IsOp(":") && !IsOp("]")) stop = Expression();
        if (IsOp(":")) { Next(); if (!IsOp("]")) step = Expression(); }
        Expect(TokenKind.Operator, "]");
        return new SliceExpr(target, start, stop, step, line);
    }

    private (List<Expr> Args, List<(string, Expr)> Kwargs) Arguments()
    {
        Expect(TokenKind.Operator, "(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (Peek.Kind == TokenKind.Name && PeekAt(1) is { Kind: TokenKind.Operator, Text: "=" })
            {
                string name = Next().Text;
                Next();
                kwargs.Add((name, Expression()));
            }
            else if (kwargs.Count > 0) throw new TemplateException("a positional argument follows a keyword argument", Peek.Line);
            else args.Add(Expression());
            if (!IsOp(")")) Expect(TokenKind.Operator, ",");
        }
        Next();
        return (args, kwargs);
    }

    private Expr Primary()
    {
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.String:
                string text = (string)token.Value!;
                while (Peek.Kind == TokenKind.String) text += (string)Next().Value!; // 'a' 'b' is 'ab'
                return new LiteralExpr(text, token.Line);
            case TokenKind.Integer or TokenKind.Float:
                return new LiteralExpr(token.Value, token.Line);
            case TokenKind.Name:
                return token.Text switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line),
                    "false" or "False" => new LiteralExpr(false, token.Line),
                    "none" or "None" => new LiteralExpr(null, token.Line),
                    _ => new NameExpr(token.Text, token.Line),
                };
            case TokenKind.Operator when token.Text == "(":
                Enter(token.Line);
                try
                {
                    if (IsOp(")")) { Next(); return new ListExpr([], true, token.Line); }
                    var first = Expression();
                    if (IsOp(")")) { Next(); return first; }
                    var items = new List<Expr> { first };
                    while (IsOp(",")) { Next(); if (IsOp(")")) break; items.Add(Expression()); }
                    Expect(TokenKind.Operator, ")");
                    return new ListExpr(items, true, token.Line);
                }
                finally { _depth--; }
            case TokenKind.Operator when token.Text == "[":
                Enter(token.Line);
                try
                {
                    var items = new List<Expr>();
                    while (!IsOp("]")) { items.Add(Expression()); if (!IsOp("]")) Expect(TokenKind.Operator, ","); }
                    Next();
                    return new ListExpr(items, false, token.Line);
                }
                finally { _depth--; }
            case TokenKind.Operator when token.Text == "{":
                Enter(token.Line);
                try
                {
                    var pairs = new List<(Expr, Expr)>();
                    while (!IsOp("}"))
                    {
                        var key = Expression();
                        Expect(TokenKind.Operator, ":");
                        pairs.Add((key, Expression()));
                        if (!IsOp("}")) Expect(TokenKind.Operator, ",");
                    }
                    Next();
                    return new DictExpr(pairs, token.Line);
                }
                finally { _depth--; }
            default:
                throw new TemplateException($"expected a value but found {Describe(token)}", token.Line);
        }
    }
}
