using Microsoft.Extensions.DependencyInjection;
using OnlineAlign.Contracts;
using Orleans.Serialization;
using Orleans.Serialization.TypeSystem;

namespace OnlineAlign.Tests.Specs;

/// <summary>
/// A run's persisted state is JSON naming each object's type, and Orleans reads back only the types its manifest
/// allows. A spec section it does not know makes a run unreadable once a silo restarts (a LoRA run's state was, until
/// LoraSpec had a converter): every type a spec holds must resolve.
/// </summary>
public class SpecTypesAllowedTests
{
    [Fact]
    public void EveryTypeARunSpecHoldsIsAllowedByOrleansTypeManifest()
    {
        using var services = new ServiceCollection().AddSerializer().BuildServiceProvider();
        var converter = services.GetRequiredService<TypeConverter>();
        var sections = new HashSet<Type>();
        void Walk(Type type)
        {
            if (type.Assembly != typeof(OnlineAlign.Specs.SpecLimits).Assembly || !sections.Add(type)) return;
            foreach (var property in type.GetProperties()) Walk(Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType);
        }
        foreach (var property in typeof(RunSpec).GetProperties()) Walk(Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType);
        Assert.Contains(typeof(OnlineAlign.Specs.LoraSpec), sections);
        foreach (var type in sections)
        {
            var problem = Record.Exception(() => converter.Parse(converter.Format(type)));
            Assert.True(problem is null, $"{type.Name}: {problem?.Message}");
        }
    }
}
