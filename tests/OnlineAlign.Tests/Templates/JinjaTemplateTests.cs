using OnlineAlign.Modeling.Templates;

namespace OnlineAlign.Tests.Templates;

/// <summary>The chat-template interpreter, construct by construct, its errors and its sandbox limits.</summary>
public class JinjaTemplateTests
{
    private static readonly Dictionary<string, object?> Vars = new()
    {
        ["x"] = "set",
        ["d"] = new Dictionary<string, object?> { ["a"] = 1, ["b"] = 2 },
        ["msgs"] = new List<object?>
        {
            new Dictionary<string, object?> { ["role"] = "system", ["content"] = "S" },
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "U1" },
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "U2" },
        },
    };

    private static string Render(string template, TemplateLimits? limits = null) => JinjaTemplate.Parse(template, limits).Render(Vars);

    private static TemplateException Fails(string template, TemplateLimits? limits = null) =>
        Assert.Throws<TemplateException>(() => Render(template, limits));

    [Theory]
    // output, literals, concatenation and Python's printing of values
    [InlineData("{{ 'a' ~ 1 ~ none ~ true }}|{{ 1.0 }}|{{ [1, 'b'] }}|{{ \"q\\n\" }}", "a1NoneTrue|1.0|[1, 'b']|q\n")]
    // whitespace control: trim_blocks, lstrip_blocks, - on either side, one trailing newline dropped
    [InlineData("{% if true %}\n  x\n{% endif %}\n", "  x\n")]
    [InlineData("a\n    {% if true %}b{% endif %}", "a\nb")]
    [InlineData("a {{- ' b ' -}} c", "a b c")]
    [InlineData("a\n  {%- if true -%}\n  b\n{%- endif %}", "ab")]
    [InlineData("  {{ 'x' }}\n{# note #}\ny", "  x\ny")]
    // if / elif / else, and / or / not, comparisons and chains, the conditional expression
    [InlineData("{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}{% endfor %}", "onetwomany")]
    [InlineData("{{ not true or false }}{{ 1 < 2 < 3 }}{{ 2 >= 3 }}{{ 1 if false else 2 }}{{ 'a' != 'b' }}{{ none or 'dflt' }}{{ 0 and 5 }}", "FalseTrueFalse2Truedflt0")]
    [InlineData("{{ 'a' in 'cat' }}{{ 2 not in [1] }}{{ 'a' in d }}{{ 7 // 2 }}{{ -7 // 2 }}{{ 7 % 3 }}{{ 2 ** 3 }}{{ 7 / 2 }}{{ 1 + 2 * 3 - 1 }}", "TrueTrueTrue3-4183.56")]
    // for: loop variables, dict items, unpacking, filters, else, break/continue
    [InlineData("{% for v in ['a', 'b', 'c'] %}{{ loop.index0 }}{{ loop.index }}{{ v }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", "01aTrueFalse3|12bFalseFalse3|23cFalseTrue3|")]
    [InlineData("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d | items %}{{ k }}{% endfor %}{% for k in d %}{{ k }}{% endfor %}", "a=1;b=2;abab")]
    [InlineData("{% for m in msgs if m.role == 'user' %}{{ m.content }}{{ loop.length }}{% endfor %}{% for m in [] %}x{% else %}empty{% endfor %}", "U12U22empty")]
    [InlineData("{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}", "023")]
    [InlineData("{% for m in msgs[::-1] %}{{ m.content }}{% endfor %}", "U2U1S")]
    // set: plain, in a loop (scoped), namespace attributes, block form, tuples
    [InlineData("{% set y = 1 %}{% for i in [1] %}{% set y = 2 %}{{ y }}{% endfor %}{{ y }}", "21")]
    [InlineData("{% set ns = namespace(n=0, seen=false) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}{{ ns.seen }}", "6False")]
    [InlineData("{% set block %}in {{ x }}{% endset %}[{{ block }}]{% set a, b = [1, 2] %}{{ b }}", "[in set]2")]
    // macros
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo') }} {{ greet('Al', punct='?') }}", "Hi Bo! Hi Al?")]
    // filters
    [InlineData("{{ '  x ' | trim }}|{{ [1, 2, 3] | length }}|{{ 'ab' | upper }}{{ 'AB' | lower }}|{{ nothing | default('d') }}{{ '' | default('e', true) }}", "x|3|ABab|de")]
    [InlineData("{{ [1, 2] | first }}{{ [1, 2] | last }}|{{ ['a', 'b'] | join(', ') }}|{{ 'aXa' | replace('a', 'b') }}|{{ 12 | string ~ 'x' }}|{{ 'abc' | length }}", "12|a, b|bXb|12x|3")]
    [InlineData("{{ {'a': [1, 'x', none, true], 'b': 1.5, 'c': 'é\"'} | tojson }}", "{\"a\": [1, \"x\", null, true], \"b\": 1.5, \"c\": \"é\\\"\"}")]
    [InlineData("{{ {'a': 1} | tojson(indent=2) }}", "{\n  \"a\": 1\n}")]
    [InlineData("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|{{ msgs | rejectattr('role', 'equalto', 'user') | list | length }}", "U1,U2|1")]
    // tests
    [InlineData("{{ x is defined }}{{ y is defined }}{{ none is none }}{{ 's' is string }}{{ d is mapping }}{{ [1] is iterable }}{{ 3 is equalto 3 }}{{ x is not none }}{{ false is sameas false }}{{ 4 is divisibleby 2 }}", "TrueFalseTrueTrueTrueTrueTrueTrueTrueTrue")]
    [InlineData("{% if not missing is defined %}{% set missing = false %}{% endif %}{{ missing }}{{ missing is false }}", "FalseTrue")]
    // slicing and indexing
    [InlineData("{{ 'hello'[::-1] }}|{{ [1, 2, 3][1:] }}|{{ 'hello'[1:3] }}|{{ [1, 2, 3][-1] }}|{{ msgs[0]['role'] }}{{ msgs[0].content }}|{{ msgs[9] is defined }}", "olleh|[2, 3]|el|3|systemS|False")]
    // string and dict methods
    [InlineData("{{ 'ab'.startswith('a') }}{{ 'ab'.endswith('a') }}|{{ '\\nx\\n'.strip('\\n') }}|{{ 'a,b'.split(',')[1] }}|{{ ' a  b '.split() | length }}|{{ 'xxa'.lstrip('x') }}{{ 'axx'.rstrip('x') }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|{{ 'aa'.replace('a', 'b') }}", "TrueFalse|x|b|2|aa|ABab|bb")]
    [InlineData("{{ 'x</think>\\n\\ny'.split('</think>')[-1].lstrip('\\n') }}|{{ d.get('a') }}{{ d.get('z', 'none!') }}{{ d.get('z') }}{{ d.z is defined }}|{{ d.keys() | list }}", "y|1none!NoneFalse|['a', 'b']")]
    public void RendersTheConstructsChatTemplatesUse(string template, string expected) => Assert.Equal(expected, Render(template));

    [Fact]
    public void StrftimeNowFormatsTodayAsPythonDoes()
    {
        Assert.Matches(@"^\d{2} [A-Z][a-z]{2} \d{4}$", Render("{{ strftime_now('%d %b %Y') }}"));
    }

    [Fact]
    public void RaiseExceptionIsAClearErrorOnItsLine()
    {
        var error = Fails("line one\n{% if true %}\n{{ raise_exception('Conversation roles must alternate') }}{% endif %}");
        Assert.True(error.Raised);
        Assert.Equal(3, error.Line);
        Assert.Equal("line 3: the template raised an error: Conversation roles must alternate", error.Message);
    }

    [Theory]
    [InlineData("a\n\n{% if x %}never closed", 3, "missing {% endif %}")]
    [InlineData("{{ x }}\n{% frobnicate %}", 2, "unknown tag 'frobnicate'")]
    [InlineData("\n\n\n{{ nothing.role }}", 4, "'nothing' is undefined")]
    [InlineData("{{ 1 +\n'a' }}", 1, "unsupported operand types for +: int and str")]
    [InlineData("ok\n{{ x | nosuchfilter }}", 2, "unknown filter 'nosuchfilter'")]
    [InlineData("{{ 'never closed }}", 1, "string literal is never closed")]
    [InlineData("{% for m in msgs %}\n{% set m.role = 'x' %}{% endfor %}", 2, "is not a namespace()")]
    [InlineData("{{ d.items.x() }}", 1, "cannot be called")]
    public void ErrorsNameTheTemplateLine(string template, int line, string message)
    {
        var error = Fails(template);
        Assert.Equal(line, error.Line);
        Assert.Contains(message, error.Message);
        Assert.StartsWith($"line {line}: ", error.Message);
    }

    [Fact]
    public void LoopsOutputRecursionAndTimeAreBounded()
    {
        Assert.Contains("loop iterations", Fails("{% for i in range(10**9) %}{% endfor %}").Message);
        var fewIterations = TemplateLimits.Default with { MaxLoopIterations = 10_000 };
        Assert.Contains("more than 10000 loop iterations", Fails("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", fewIterations).Message);
        Assert.Contains("output is longer", Fails("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}").Message);
        Assert.Contains("a string longer", Fails("{{ 'x' * 10**9 }}").Message);
        Assert.Contains("a string longer", Fails("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}").Message);
        Assert.Contains("macro calls nested deeper", Fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").Message);
        Assert.Contains("rendering took longer", Fails("{{ 'x' }}", TemplateLimits.Default with { MaxTime = TimeSpan.Zero }).Message);
        // Deep nesting is refused by the parser instead of overflowing the stack.
        Assert.Contains("nesting deeper", Assert.Throws<TemplateException>(() => JinjaTemplate.Parse("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}")).Message);
        Assert.Contains("nesting deeper", Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(string.Concat(Enumerable.Repeat("{% if true %}", 5000)))).Message);
    }

    [Fact]
    public void TemplatesSeeNoDotNetObjects()
    {
        // Members of .NET types do not exist for a template: they are undefined, and calling one is an error.
        Assert.Equal("|", Render("{{ 'a'.GetType }}|{{ d.Count }}{{ ''.__class__ }}"));
        Assert.Contains("'GetType' is undefined", Fails("{{ x.GetType() }}").Message);
        Assert.Contains("'Length' is undefined", Fails("{{ x.Length() }}").Message);
        // Mutating methods of the sandboxed Python objects are not there either.
        Assert.Contains("'append' is undefined", Fails("{{ msgs.append(1) }}").Message);
        // Only plain data can be passed in.
        Assert.Throws<ArgumentException>(() => JinjaTemplate.Parse("{{ o }}").Render(new Dictionary<string, object?> { ["o"] = new Uri("http://x") }));
    }
}
