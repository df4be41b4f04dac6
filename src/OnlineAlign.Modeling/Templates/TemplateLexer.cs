using System.Globalization;
using System.Text;

namespace OnlineAlign.Modeling.Templates;

internal enum TokenKind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

internal readonly record struct Token(TokenKind Kind, string Text, int Line, object? Value = null);

/// <summary>
/// Splits a template into text and the tokens of its tags, applying whitespace control as transformers configures
/// Jinja: trim_blocks (the newline after a block or comment tag is dropped), lstrip_blocks (spaces and tabs before a
/// block or comment tag on its own line are dropped), "-" on a tag strips all whitespace on that side, "+" turns the
/// block options off, and a single trailing newline of the source is dropped (keep_trailing_newline=False).
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly string[] Operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "|", ".", ",", ":", "(", ")",
        "[", "]", "{", "}", "<", ">", "="];

    private readonly string _src;
    private readonly List<Token> _tokens = [];
    private int _pos;
    private int _line = 1;
    private bool _lineStarting = true;

    private TemplateLexer(string source) => _src = source;

    public static List<Token> Tokenize(string source)
    {
        if (source.EndsWith("\r\n", StringComparison.Ordinal)) source = source[..^2];
        else if (source.EndsWith('\n')) source = source[..^1];
        var lexer = new TemplateLexer(source);
        lexer.Run();
        lexer._tokens.Add(new Token(TokenKind.End, "", lexer._line));
        return lexer._tokens;
    }

    private void Run()
    {
        while (_pos < _src.Length)
        {
            int open = NextTag(_pos);
            int textEnd = open < 0 ? _src.Length : open;
            string text = _src[_pos..textEnd];
            char kind = open < 0 ? '\0' : _src[open + 1];
            char sign = open >= 0 && open + 2 < _src.Length ? _src[open + 2] : '\0';
            if (open >= 0 && sign == '-') text = text.TrimEnd();
            else if (open >= 0 && kind != '{' && sign != '+') text = LstripBlock(text);
            if (text.Length > 0) _tokens.Add(new Token(TokenKind.Text, text, _line));
            Advance(textEnd);
            if (open < 0) break;

            int tagLine = _line;
            Advance(open + 2 + (sign is '-' or '+' ? 1 : 0));
            if (kind == '#') Comment(tagLine);
            else
            {
                _tokens.Add(new Token(kind == '{' ? TokenKind.VarBegin : TokenKind.BlockBegin, kind == '{' ? "{{" : "{%", tagLine));
                TagBody(kind == '{' ? '}' : '%', tagLine);
            }
        }
    }

    private int NextTag(int from)
    {
        for (int i = _src.IndexOf('{', from); i >= 0 && i + 1 < _src.Length; i = _src.IndexOf('{', i + 1))
            if (_src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>lstrip_blocks: drop spaces and tabs between the start of the line and a block tag.</summary>
    private string LstripBlock(string text)
    {
        int lastNewline = text.LastIndexOf('\n');
        if (lastNewline < 0 && !_lineStarting) return text;
        for (int i = lastNewline + 1; i < text.Length; i++)
            if (text[i] is not (' ' or '\t')) return text;
        return text[..(lastNewline + 1)];
    }

    private void Advance(int to)
    {
        for (int i = _pos; i < to; i++) if (_src[i] == '\n') _line++;
        _pos = to;
    }

    private void Comment(int tagLine)
    {
        int close = _src.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (close < 0) throw new TemplateException("comment is never closed with #}", tagLine);
        char sign = _src[close - 1];
        Advance(close + 2);
        AfterTag(sign, block: true);
    }

    /// <summary>Whitespace after a tag: all of it for "-", the first newline for a block under trim_blocks.</summary>
    private void AfterTag(char sign, bool block)
    {
        int start = _pos;
        if (sign == '-')
            while (_pos < _src.Length && char.IsWhiteSpace(_src[_pos])) Advance(_pos + 1);
        else if (block && sign != '+')
        {
            if (_src.AsSpan(_pos).StartsWith("\r\n")) Advance(_pos + 2);
            else if (_pos < _src.Length && _src[_pos] == '\n') Advance(_pos + 1);
        }
        _lineStarting = _pos > start && _src[_pos - 1] == '\n';
    }

    private void TagBody(char closer, int tagLine)
    {
        int braces = 0;
        while (true)
        {
            while (_pos < _src.Length && char.IsWhiteSpace(_src[_pos])) Advance(_pos + 1);
            if (_pos >= _src.Length) throw new TemplateException(closer == '}' ? "{{ is never closed with }}" : "{% is never closed with %}", tagLine);
            if (braces == 0 && TryClose(closer)) return;
            char c = _src[_pos];
            if (c is '\'' or '"') StringLiteral(c);
            else if (char.IsAsciiDigit(c)) Number();
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = _pos;
                while (_pos < _src.Length && (char.IsAsciiLetterOrDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
                _tokens.Add(new Token(TokenKind.Name, _src[start.._pos], _line));
            }
            else
            {
                string? op = Operators.FirstOrDefault(o => _src.AsSpan(_pos).StartsWith(o));
                if (op is null) throw new TemplateException($"unexpected character '{c}' in a tag", _line);
                if (op == "{") braces++;
                else if (op == "}") braces--;
                _tokens.Add(new Token(TokenKind.Operator, op, _line));
                _pos += op.Length;
            }
        }
    }

    private bool TryClose(char closer)
    {
        var rest = _src.AsSpan(_pos);
        string close = closer == '}' ? "}}" : "%}";
        char sign = '\0';
        if (rest.StartsWith(close)) { }
        else if ((rest.StartsWith("-") || (closer == '%' && rest.StartsWith("+"))) && rest[1..].StartsWith(close)) { sign = rest[0]; _pos++; }
        else return false;
        int line = _line;
        Advance(_pos + 2);
        _tokens.Add(new Token(closer == '}' ? TokenKind.VarEnd : TokenKind.BlockEnd, close, line));
        AfterTag(sign, block: closer == '%');
        return true;
    }

    private void StringLiteral(char quote)
    {
        int line = _line;
        var text = new StringBuilder();
        int i = _pos + 1;
        for (; i < _src.Length && _src[i] != quote; i++)
        {
            if (_src[i] != '\\' || i + 1 >= _src.Length) { text.Append(_src[i]); continue; }
            char e = _src[++i];
            switch (e)
            {
                case 'n': text.Append('\n'); break;
                case 't': text.Append('\t'); break;
                case 'r': text.Append('\r'); break;
                case 'b': text.Append('\b'); break;
                case 'f': text.Append('\f'); break;
                case '0': text.Append('\0'); break;
                case '\\' or '\'' or '"': text.Append(e); break;
                case '\n': break; // a backslash-newline continues the literal
                case 'x' or 'u' or 'U':
                    int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (i + digits >= _src.Length
                        || !int.TryParse(_src.AsSpan(i + 1, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
                        throw new TemplateException($"invalid \\{e} escape in a string", _line);
                    text.Append(char.ConvertFromUtf32(code));
                    i += digits;
                    break;
                default: text.Append('\\').Append(e); break; // Python keeps unknown escapes as written
            }
        }
        if (i >= _src.Length) throw new TemplateException("string literal is never closed", line);
        _tokens.Add(new Token(TokenKind.String, text.ToString(), line, text.ToString()));
        Advance(i + 1);
    }

    private void Number()
    {
        int start = _pos;
        while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
        bool isFloat = false;
        if (_pos + 1 < _src.Length && _src[_pos] == '.' && char.IsAsciiDigit(_src[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
        }
        if (_pos < _src.Length && _src[_pos] is 'e' or 'E')
        {
            int save = _pos++;
            if (_pos < _src.Length && _src[_pos] is '+' or '-') _pos++;
            if (_pos < _src.Length && char.IsAsciiDigit(_src[_pos])) { isFloat = true; while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos])) _pos++; }
            else _pos = save;
        }
        string text = _src[start.._pos].Replace("_", "");
        if (isFloat) _tokens.Add(new Token(TokenKind.Float, text, _line, double.Parse(text, CultureInfo.InvariantCulture)));
        else if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
            _tokens.Add(new Token(TokenKind.Integer, text, _line, value));
        else throw new TemplateException($"integer {text} is too large", _line);
    }
}
