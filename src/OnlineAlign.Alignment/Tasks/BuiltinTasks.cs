namespace OnlineAlign.Alignment.Tasks;

public static class BuiltinTasks
{
    public static readonly string[] Names = ["sort", "add", "reverse"];

    public static IVerifiableTask ByName(string name) => name switch
    {
        "sort" => new SortDigitsTask(),
        "add" => new AddNumbersTask(),
        "reverse" => new ReverseWordTask(),
        _ => throw new ArgumentException($"task '{name}' is not a built-in task ({string.Join(", ", Names)})"),
    };
}
