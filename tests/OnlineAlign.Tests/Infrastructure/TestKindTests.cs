using System.Reflection;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// The fast subset (`--filter "Kind!=Cluster"`) must not start processes: every test class in a process lane
/// (<see cref="ProcessLanes"/>), or whose fixture is a process cluster, carries [Trait("Kind", "Cluster")].
/// </summary>
public class TestKindTests
{
    private static readonly Type[] ProcessFixtures = [typeof(LocalTestCluster), typeof(SharedCluster), typeof(Security.SafetyCluster)];

    [Fact]
    public void EveryClassThatStartsAClusterIsOfKindCluster()
    {
        var missing = typeof(TestKindTests).Assembly.GetTypes()
            .Where(t => t.IsClass && (InProcessesCollection(t) || UsesProcessFixture(t)) && !OfKindCluster(t))
            .Select(t => t.FullName)
            .ToList();
        Assert.True(missing.Count == 0, "classes that start processes without [Trait(\"Kind\", \"Cluster\")]: " + string.Join(", ", missing));
    }

    private static bool InProcessesCollection(Type t) => t.GetCustomAttributesData()
        .Any(a => a.AttributeType == typeof(CollectionAttribute) && ProcessLanes.All.Contains(a.ConstructorArguments[0].Value as string));

    private static bool UsesProcessFixture(Type t) => t.GetConstructors()
        .SelectMany(c => c.GetParameters())
        .Any(p => ProcessFixtures.Contains(p.ParameterType));

    private static bool OfKindCluster(Type t) => t.GetCustomAttributesData()
        .Any(a => a.AttributeType == typeof(TraitAttribute)
                  && Equals(a.ConstructorArguments[0].Value, "Kind") && Equals(a.ConstructorArguments[1].Value, "Cluster"));
}
