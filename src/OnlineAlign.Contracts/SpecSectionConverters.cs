using System.Text.Json;
using System.Text.Json.Serialization;
using OnlineAlign.Specs;

namespace OnlineAlign.Contracts;

/// <summary>
/// How Orleans carries a run spec's sections. They live in OnlineAlign.Specs, which the core (Alignment) uses and which
/// has no Orleans dependency; Orleans' code generator cannot set their init-only properties from another assembly, so
/// each travels as its JSON (by field name: a field added to a section needs nothing here; a new section needs one
/// converter below). NaN and infinities pass through: a spec is checked after it arrives, and a bad value must be named.
/// </summary>
[GenerateSerializer, Immutable]
public readonly record struct SpecSectionJson([property: Id(0)] string Json)
{
    private static readonly JsonSerializerOptions Options = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static SpecSectionJson From<T>(T section) => new(JsonSerializer.Serialize(section, Options));

    public T To<T>() => JsonSerializer.Deserialize<T>(Json, Options) ?? throw new InvalidDataException($"{typeof(T).Name}: null");
}

[RegisterConverter]
public sealed class SamplingSpecConverter : IConverter<SamplingSpec, SpecSectionJson>
{
    public SamplingSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<SamplingSpec>();
    public SpecSectionJson ConvertToSurrogate(in SamplingSpec value) => SpecSectionJson.From(value);
}

[RegisterConverter]
public sealed class JudgeSpecConverter : IConverter<JudgeSpec, SpecSectionJson>
{
    public JudgeSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<JudgeSpec>();
    public SpecSectionJson ConvertToSurrogate(in JudgeSpec value) => SpecSectionJson.From(value);
}

[RegisterConverter]
public sealed class LossSpecConverter : IConverter<LossSpec, SpecSectionJson>
{
    public LossSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<LossSpec>();
    public SpecSectionJson ConvertToSurrogate(in LossSpec value) => SpecSectionJson.From(value);
}

[RegisterConverter]
public sealed class OptimizerSpecConverter : IConverter<OptimizerSpec, SpecSectionJson>
{
    public OptimizerSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<OptimizerSpec>();
    public SpecSectionJson ConvertToSurrogate(in OptimizerSpec value) => SpecSectionJson.From(value);
}

[RegisterConverter]
public sealed class BudgetSpecConverter : IConverter<BudgetSpec, SpecSectionJson>
{
    public BudgetSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<BudgetSpec>();
    public SpecSectionJson ConvertToSurrogate(in BudgetSpec value) => SpecSectionJson.From(value);
}

[RegisterConverter]
public sealed class RetentionSpecConverter : IConverter<RetentionSpec, SpecSectionJson>
{
    public RetentionSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<RetentionSpec>();
    public SpecSectionJson ConvertToSurrogate(in RetentionSpec value) => SpecSectionJson.From(value);
}

[RegisterConverter]
public sealed class GuardSpecConverter : IConverter<GuardSpec, SpecSectionJson>
{
    public GuardSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<GuardSpec>();
    public SpecSectionJson ConvertToSurrogate(in GuardSpec value) => SpecSectionJson.From(value);
}

[RegisterConverter]
public sealed class ModelSpecConverter : IConverter<ModelSpec, SpecSectionJson>
{
    public ModelSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<ModelSpec>();
    public SpecSectionJson ConvertToSurrogate(in ModelSpec value) => SpecSectionJson.From(value);
}

[RegisterConverter]
public sealed class PromptSpecConverter : IConverter<PromptSpec, SpecSectionJson>
{
    public PromptSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<PromptSpec>();
    public SpecSectionJson ConvertToSurrogate(in PromptSpec value) => SpecSectionJson.From(value);
}

// The LoRA section travels inside the model section's JSON; its converter also makes it a known type, which the JSON
// grain storage's type allow-list requires to read a persisted run state back (a silo restarted mid-run reads it).
[RegisterConverter]
public sealed class LoraSpecConverter : IConverter<LoraSpec, SpecSectionJson>
{
    public LoraSpec ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<LoraSpec>();
    public SpecSectionJson ConvertToSurrogate(in LoraSpec value) => SpecSectionJson.From(value);
}
