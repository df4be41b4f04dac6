using System.Text.Json;
using System.Text.Json.Serialization;
using OnlineAlign.Specs;

namespace OnlineAlign.Contracts;

/// <summary>
/// How Orleans carries a run spec's sections. They live in OnlineAlign.Specs, which the core (Alignment) uses and which
/// has no Orleans dependency; Orleans' code generator cannot set their init-only properties from another assembly, so
/// each travels as its JSON (by field name: a field added to a section needs nothing here; a new section needs one
/// line below). NaN and infinities pass through: a spec is checked after it arrives, and a bad value must be named.
/// </summary>
[GenerateSerializer, Immutable]
public readonly record struct SpecSectionJson([property: Id(0)] string Json)
{
    private static readonly JsonSerializerOptions Options = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static SpecSectionJson From<T>(T section) => new(JsonSerializer.Serialize(section, Options));

    public T To<T>() => JsonSerializer.Deserialize<T>(Json, Options) ?? throw new InvalidDataException($"{typeof(T).Name}: null");
}

/// <summary>
/// A section to and from its JSON. One converter type per section all the same: Orleans registers a converter by its
/// closed IConverter interface, so each section names its own (an open generic converter is not found for a non-generic type).
/// </summary>
public abstract class SpecSectionConverter<T> : IConverter<T, SpecSectionJson> where T : class
{
    public T ConvertFromSurrogate(in SpecSectionJson surrogate) => surrogate.To<T>();
    public SpecSectionJson ConvertToSurrogate(in T value) => SpecSectionJson.From(value);
}

[RegisterConverter] public sealed class SamplingSpecConverter : SpecSectionConverter<SamplingSpec>;
[RegisterConverter] public sealed class JudgeSpecConverter : SpecSectionConverter<JudgeSpec>;
[RegisterConverter] public sealed class LossSpecConverter : SpecSectionConverter<LossSpec>;
[RegisterConverter] public sealed class OptimizerSpecConverter : SpecSectionConverter<OptimizerSpec>;
[RegisterConverter] public sealed class BudgetSpecConverter : SpecSectionConverter<BudgetSpec>;
[RegisterConverter] public sealed class RetentionSpecConverter : SpecSectionConverter<RetentionSpec>;
[RegisterConverter] public sealed class GuardSpecConverter : SpecSectionConverter<GuardSpec>;
[RegisterConverter] public sealed class ModelSpecConverter : SpecSectionConverter<ModelSpec>;
[RegisterConverter] public sealed class PromptSpecConverter : SpecSectionConverter<PromptSpec>;
// The LoRA section travels inside the model section's JSON; its converter also makes it a known type, which the JSON
// grain storage's type allow-list requires to read a persisted run state back (a silo restarted mid-run reads it).
[RegisterConverter] public sealed class LoraSpecConverter : SpecSectionConverter<LoraSpec>;
