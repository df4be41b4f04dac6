using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Specs;
using Orleans.Serialization;
using Orleans.Storage;

namespace OnlineAlign.Tests.Reliability;

/// <summary>
/// A phase's done-marker key hashes its request, spec included, so a run's spec must come back unchanged from every
/// copy it goes through: the run's state in grain storage (JSON, read whenever the run grain activates again), Orleans'
/// wire format and its deep copy. A LoRA run's target modules came back from storage as the default ones, so after a
/// kill the live shard of a phase was computed again under a new key.
/// </summary>
public class SpecKeyRoundTripTests
{
    private static readonly string[] Targets = ["q_proj", "v_proj", "down_proj"];

    private static RunSpec LoraSpec() => new()
    {
        GenerationReplicas = 0,
        Model = new ModelSpec { Lora = new LoraSpec { Rank = 8, Alpha = 16, TargetModules = Targets } },
    };

    private static ServiceProvider Services(bool asTheSiloConfiguresIt)
    {
        var services = new ServiceCollection().AddSerializer()
            .AddSingleton<OrleansJsonSerializer>()
            .AddSingleton<IGrainStorageSerializer, JsonGrainStorageSerializer>();
        if (asTheSiloConfiguresIt) services.Configure<OrleansJsonSerializerOptions>(RunStateJson.Configure);
        return services.BuildServiceProvider();
    }

    private static RunSpec Stored(IGrainStorageSerializer storage, RunSpec spec) =>
        storage.Deserialize<RunState>(storage.Serialize(new RunState { Spec = spec, Format = RunState.CurrentFormat }))!.Spec!;

    private static string Key(RunSpec spec) => PhaseBlobs.Key("judge", new PhaseRequest { RunId = "r", Round = 2, Spec = spec });

    [Fact]
    public void ALoraRunsPhaseKeyIsTheSameAfterItsStateIsStoredAndReadBackCopiedOrSent()
    {
        using var services = Services(asTheSiloConfiguresIt: true);
        var storage = services.GetRequiredService<IGrainStorageSerializer>();
        var serializer = services.GetRequiredService<Serializer>();
        var copier = services.GetRequiredService<DeepCopier<RunState>>();
        var spec = LoraSpec();
        var stored = Stored(storage, spec);
        Assert.Equal(Targets, stored.Model.Lora!.TargetModules);
        Assert.Equal(spec, stored);
        Assert.Equal(Key(spec), Key(stored));
        Assert.Equal(Key(spec), Key(serializer.Deserialize<RunSpec>(serializer.SerializeToArray(stored))!));
        Assert.Equal(Key(spec), Key(copier.Copy(new RunState { Spec = stored }).Spec!));
        // A state written with Orleans' own settings (before the fix) holds the targets: read now, it keeps the run's keys.
        using var before = Services(asTheSiloConfiguresIt: false);
        var written = before.GetRequiredService<IGrainStorageSerializer>().Serialize(new RunState { Spec = spec, Format = RunState.CurrentFormat });
        Assert.Equal(Key(spec), Key(storage.Deserialize<RunState>(written)!.Spec!));
    }

    [Fact]
    public void OrleansOwnJsonSettingsReadAnotherSpecBack()
    {
        // Why the silo configures the settings: without it this very spec comes back with the default targets.
        using var services = Services(asTheSiloConfiguresIt: false);
        var stored = Stored(services.GetRequiredService<IGrainStorageSerializer>(), LoraSpec());
        Assert.NotEqual(Targets, stored.Model.Lora!.TargetModules);
        Assert.NotEqual(Key(LoraSpec()), Key(stored));
    }

    [Fact]
    public void EverySpecFieldSetToItsTypesDefaultReadsBackFromStorage()
    {
        // A field whose default is not its type's (pretrain_steps 200, min_judge_tau 0.5) set to 0 or false was left out
        // of the stored JSON and read back as its default. Every such field of every section, all at once.
        using var services = Services(asTheSiloConfiguresIt: true);
        var spec = Zeroed(LoraSpec());
        Assert.Equal(0, spec.Model.PretrainSteps);
        Assert.Equal(0, spec.Guard.MinJudgeTau);
        var stored = Stored(services.GetRequiredService<IGrainStorageSerializer>(), spec);
        Assert.Equal(System.Text.Encoding.UTF8.GetString(PhaseBlobs.Bytes(spec)), System.Text.Encoding.UTF8.GetString(PhaseBlobs.Bytes(stored)));
        Assert.Equal(Key(spec), Key(stored));
    }

    /// <summary>A copy of <paramref name="value"/> with every value-typed property whose default is not its type's set to its type's.</summary>
    private static T Zeroed<T>(T value) where T : class
    {
        var copy = (T)typeof(T).GetMethod("<Clone>$")!.Invoke(value, null)!;
        foreach (var property in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var type = property.PropertyType;
            var current = property.GetValue(copy);
            if (type.IsValueType && !Equals(current, Activator.CreateInstance(type))) property.SetValue(copy, Activator.CreateInstance(type));
            else if (current is not null && !type.IsValueType && type.Assembly == typeof(SpecLimits).Assembly)
                property.SetValue(copy, typeof(SpecKeyRoundTripTests).GetMethod(nameof(Zeroed), BindingFlags.NonPublic | BindingFlags.Static)!
                    .MakeGenericMethod(type).Invoke(null, [current]));
        }
        return copy;
    }
}
