using System.Reflection;
using Google.Protobuf;

namespace OnlineAlign.Silo.Api;

/// <summary>
/// Between a runs.proto section message (its fields optional: unset means the section's default) and the spec section
/// record that mirrors it, matched by name: the record's property Foo is the message's Foo (set where HasFoo). A field
/// added to both needs nothing here; a property without a field is refused (SectionMappingTests checks every section).
/// </summary>
public static class SectionMapping
{
    public static TSection FromProto<TSection>(IMessage? message) where TSection : new()
    {
        var section = new TSection();
        if (message is null) return section;
        var wire = message.GetType();
        foreach (var property in Properties(typeof(TSection)))
        {
            var field = Field(wire, property);
            if (wire.GetProperty("Has" + property.Name) is { } has && !(bool)has.GetValue(message)!) continue;
            property.SetValue(section, field.GetValue(message)); // init-only: set once, on the new record
        }
        return section;
    }

    public static TMessage ToProto<TMessage>(object section) where TMessage : IMessage, new()
    {
        var message = new TMessage();
        foreach (var property in Properties(section.GetType()))
            if (property.GetValue(section) is { } value) Field(typeof(TMessage), property).SetValue(message, value);
        return message;
    }

    /// <summary>The section's settable properties: its fields.</summary>
    public static IEnumerable<PropertyInfo> Properties(Type section) =>
        section.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.Name != "EqualityContract");

    private static PropertyInfo Field(Type wire, PropertyInfo property) =>
        wire.GetProperty(property.Name) is { CanWrite: true } field && field.PropertyType == property.PropertyType.UnwrapNullable()
            ? field : throw new InvalidOperationException($"{wire.Name} has no field {property.Name} of type {property.PropertyType.Name}");

    private static Type UnwrapNullable(this Type type) => Nullable.GetUnderlyingType(type) ?? type;
}
