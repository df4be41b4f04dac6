namespace OnlineAlign.Storage;

/// <summary>Azure Storage connection strings, and redaction so that keys never reach a log.</summary>
public static class StorageConnection
{
    // Azurite's documented well-known development account; not a secret.
    private const string DevAccount = "devstoreaccount1";
    private const string DevKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    public static string ForAzurite(int blobPort, int queuePort, int tablePort) =>
        $"DefaultEndpointsProtocol=http;AccountName={DevAccount};AccountKey={DevKey};" +
        $"BlobEndpoint=http://127.0.0.1:{blobPort}/{DevAccount};" +
        $"QueueEndpoint=http://127.0.0.1:{queuePort}/{DevAccount};" +
        $"TableEndpoint=http://127.0.0.1:{tablePort}/{DevAccount};";

    /// <summary>The connection string with AccountKey and SharedAccessSignature values removed, for logs.</summary>
    public static string Redact(string connectionString) =>
        string.Join(';', connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(part =>
        {
            int eq = part.IndexOf('=');
            string key = eq < 0 ? part : part[..eq];
            return key.Equals("AccountKey", StringComparison.OrdinalIgnoreCase)
                || key.Equals("SharedAccessSignature", StringComparison.OrdinalIgnoreCase)
                ? key + "=***" : part;
        }));
}
