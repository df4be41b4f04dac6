namespace OnlineAlign.Serving;

/// <summary>A request refused: the HTTP status, the request field at fault (null: the request as a whole) and why.</summary>
public sealed class ServeException(int status, string? param, string message, string type = "invalid_request_error") : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string Type { get; } = type;
}
