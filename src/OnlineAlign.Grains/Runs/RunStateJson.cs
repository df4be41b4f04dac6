using Newtonsoft.Json;
using Orleans.Serialization;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// How the silo's grain storage writes and reads state as JSON (Orleans' JSON grain storage serializer, Newtonsoft.Json).
/// Orleans' settings leave out every value equal to its type's default and fill a collection that already has a value
/// instead of replacing it; with the spec's init defaults that reads a different spec back than was written: a LoRA
/// section's target_modules came back as the default four modules, and a field set to 0 or false whose default is not
/// (model.pretrain_steps 0, guard.min_judge_tau 0) came back as its default. A run's state is read back whenever its
/// grain activates again, so every phase request after that carried another spec than the run was started with: another
/// done-marker key (a live shard computed again after a kill) and other settings. Every value is written and a read
/// replaces what the constructor put there, so a state reads back as it was written.
/// </summary>
public static class RunStateJson
{
    public static void Configure(OrleansJsonSerializerOptions options)
    {
        options.JsonSerializerSettings.DefaultValueHandling = DefaultValueHandling.Include;
        options.JsonSerializerSettings.ObjectCreationHandling = ObjectCreationHandling.Replace;
    }
}
