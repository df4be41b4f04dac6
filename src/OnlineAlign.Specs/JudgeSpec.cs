namespace OnlineAlign.Specs;

/// <summary>Who scores a round's responses, and how (runs.proto JudgeSpec).</summary>
public sealed record JudgeSpec
{
    public static readonly string[] Kinds = ["implicit", "llm", "verifier", "reward_model", "majority", "likelihood", "self_consistent", "remote"];
    /// <summary>The named LLM judge prompts; any other template is a text with {prompt} and {response}.</summary>
    public static readonly string[] Templates = ["auto", "rubric", "compact"];
    public static readonly string[] Models = ["policy", "initial"];

    public string Kind { get; init; } = "llm";
    /// <summary>LLM judge: judgements averaged per response.</summary>
    public int Judgements { get; init; } = 3;
    /// <summary>A reward model folder (from train-reward-model) for kind reward_model.</summary>
    public string? RewardModelFolder { get; init; }
    /// <summary>The LLM judge's prompt: auto (compact for built-in tasks, rubric otherwise), rubric (sampled judgements),
    /// compact (scored by the expected score digit), or a text with {prompt} and {response}.</summary>
    public string Template { get; init; } = "auto";
    /// <summary>The model the LLM judge runs on: policy (Self-Rewarding: the policy at the round's start) or initial
    /// (the warm-started model, frozen: its judging is not worn away by the updates).</summary>
    public string Model { get; init; } = "policy";
    /// <summary>The LLM judge's judgement length in tokens where it samples (rubric or a text template): Self-Rewarding's
    /// judge writes a justification before its score. The compact template reads the expected score digit and samples nothing.</summary>
    public int MaxNewTokens { get; init; } = 256;
    public const int MaxNewTokensLimit = 4096;
    /// <summary>
    /// Kind llm: also score every sample by the policy's implicit reward (log pi - log pi_ref, two more model passes a
    /// response) to record health/implicit_agreement, the signal guard.min_implicit_agreement reads. The pairs stay the LLM
    /// judge's: dropping the pairs the two disagree on is kind self_consistent, which records the signal always.
    /// </summary>
    public bool ImplicitAgreement { get; init; }

    /// <summary>Whether the round's judge reads the implicit reward: as its scores (implicit) or beside the LLM judge's.</summary>
    public bool ScoresImplicitReward() => Kind is "implicit" or "self_consistent" || Kind == "llm" && ImplicitAgreement;

    // judge.kind remote: a model behind an OpenAI-compatible chat completions endpoint (vLLM, TGI, llama.cpp's server, a
    // hosted API). The API key is never a spec field: the spec names where the worker silo finds it (an environment
    // variable of that silo, or a file under its data roots), so neither the spec nor the run's state ever holds it.

    /// <summary>remote: the endpoint's base URL, e.g. https://host/v1 (http or https; a key goes over http only to loopback).</summary>
    public string? Endpoint { get; init; }
    /// <summary>remote: the model name the endpoint serves (the request's "model").</summary>
    public string? RemoteModel { get; init; }
    /// <summary>remote: the NAME of the worker silo's environment variable that holds the API key (not the key).</summary>
    public string? ApiKeyEnv { get; init; }
    /// <summary>remote: a file under the worker silo's data roots whose content is the API key.</summary>
    public string? ApiKeyFile { get; init; }
    /// <summary>remote: requests in flight at once.</summary>
    public int Concurrency { get; init; } = 8;
    public const int ConcurrencyLimit = 256;
    /// <summary>remote: one request's time limit; a request that passes it is retried like a 5xx.</summary>
    public int TimeoutSeconds { get; init; } = 120;
    public const int TimeoutSecondsLimit = 3600;
    /// <summary>remote: attempts per request (429, 5xx, timeouts and unreadable bodies are retried with exponential backoff); then the phase fails.</summary>
    public int MaxAttempts { get; init; } = 5;
    public const int MaxAttemptsLimit = 20;
    /// <summary>remote: the judge's sampling temperature
    /// (each request also carries a seed derived from the run seed, round, prompt, sample and judgement).</summary>
    public double Temperature { get; init; } = 0.7;
    public const int EndpointLength = 2048;

    /// <summary>An environment variable name: letters, digits and underscores, not starting with a digit.</summary>
    private static bool IsVariableName(string name) =>
        name.Length is > 0 and <= 128 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    /// <summary>Every bad field, named by its path; empty when valid.</summary>
    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("judge");
        p.OneOf("kind", Kind, Kinds, limits.TextLength);
        p.Range("judgements", Judgements, 1, limits.Judgements);
        p.Length("reward_model_folder", RewardModelFolder, limits.PathLength);
        if (Template.Length > limits.JudgeTemplateLength) p.Length("template", Template, limits.JudgeTemplateLength);
        else if (!Templates.Contains(Template) && !(Template.Contains("{prompt}") && Template.Contains("{response}")))
            p.Add($"judge.template '{Cut(Template)}' is neither one of {string.Join(", ", Templates)} nor a text with {{prompt}} and {{response}}");
        p.OneOf("model", Model, Models, limits.TextLength);
        p.Range("max_new_tokens", MaxNewTokens, 1, MaxNewTokensLimit);
        p.Range("concurrency", Concurrency, 1, ConcurrencyLimit);
        p.Range("timeout_seconds", TimeoutSeconds, 1, TimeoutSecondsLimit);
        p.Range("max_attempts", MaxAttempts, 1, MaxAttemptsLimit);
        p.Real("temperature", Temperature, 0, true, 2);
        p.Length("remote_model", RemoteModel, limits.TextLength);
        p.Length("endpoint", Endpoint, EndpointLength);
        p.Length("api_key_file", ApiKeyFile, limits.PathLength);
        if (ApiKeyEnv is not null && !IsVariableName(ApiKeyEnv))
            p.Add($"judge.api_key_env '{Cut(ApiKeyEnv)}' is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*, up to 128 characters): " +
                "it names the variable, it is not the key");
        if (Kind == "remote") RemoteProblems(p, limits);
        if (ImplicitAgreement && Kind != "llm")
            p.Add($"judge.implicit_agreement is for judge.kind 'llm' (kind '{Cut(Kind)}' has no LLM judge to compare with the implicit " +
                "reward; self_consistent records health/implicit_agreement always)");
        return p.List;
    }

    private void RemoteProblems(SpecProblems p, SpecLimits limits)
    {
        if (string.IsNullOrWhiteSpace(RemoteModel)) p.Add("judge.remote_model is required with judge.kind 'remote' (the model name the endpoint serves)");
        else if (RemoteModel.Any(char.IsControl)) p.Add("judge.remote_model holds control characters");
        if (!string.IsNullOrEmpty(ApiKeyEnv) && !string.IsNullOrEmpty(ApiKeyFile))
            p.Add("judge.api_key_env and judge.api_key_file are both set: name one place for the key");
        if (Template == "compact")
            p.Add("judge.template 'compact' reads the judge's score-digit probabilities, which a remote judge does not give: " +
                "use rubric, auto or a text with {prompt} and {response}");
        if (string.IsNullOrEmpty(Endpoint)) { p.Add("judge.endpoint is required with judge.kind 'remote' (e.g. https://host/v1)"); return; }
        if (Endpoint.Length > EndpointLength) return; // reported above
        if (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            p.Add($"judge.endpoint '{Cut(Endpoint)}' is not an absolute http or https URL");
            return;
        }
        // Link-local and cloud metadata addresses are never asked (a spec must not make the silo fetch its credentials).
        if (RemoteEndpoints.Problem("judge.endpoint", uri, limits.RemoteJudgeAllowedHosts) is { } refused) p.Add(refused);
        // A key must never travel in the spec: not in the URL's user part, nor in its query (where some servers take one).
        if (uri.UserInfo.Length > 0) p.Add("judge.endpoint carries a user name or password; name the key with judge.api_key_env or judge.api_key_file");
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0) p.Add("judge.endpoint has a query or fragment; give the base URL (e.g. https://host/v1)");
        // The key goes in an Authorization header: in clear text only to this machine.
        bool keyed = !string.IsNullOrEmpty(ApiKeyEnv) || !string.IsNullOrEmpty(ApiKeyFile);
        if (keyed && uri.Scheme == "http" && !uri.IsLoopback)
            p.Add($"judge.endpoint '{uri.Scheme}://{uri.Authority}' is plain http off loopback: the API key would be sent in clear text; use https");
    }

    /// <summary>The template a remote judge sends: auto is Self-Rewarding's rubric (a remote judge is a capable instruction model).</summary>
    public string RemoteTemplate() => Template == "auto" ? "rubric" : Template;


    private static string Cut(string text) => text.Length > 60 ? text[..60] + "..." : text;
}
