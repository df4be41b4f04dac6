using Grpc.Core;
using Grpc.Health.V1;
using OnlineAlign.Api.V1;
using OnlineAlign.Silo.Api;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.EndToEnd;

[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class ApiErrorTests
{
    /// <summary>The silo's device memory (Silo:DeviceMemoryBytes): the small specs below fit it, one with a training batch of 4,096 does not.</summary>
    private const long DeviceBudget = 256L << 20;

    [Fact]
    public async Task StatusCodesForBadSpecsUnknownRunsWrongTransitionsAndApiKeys()
    {
        const string key = "test-key-123";
        // Limits come from the role file and can be overridden like any setting: a lower round limit, and a learning
        // rate limit high enough for the divergence check at the end.
        await using var cluster = await LocalTestCluster.StartKeyedAsync(key, offLoopback: false, ("Limits__Rounds", "500"), ("Limits__LearningRate", "1e13"),
            ("Api__MaxWatchStreamsPerClient", "2"), ("Silo__DeviceMemoryBytes", DeviceBudget.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var client = cluster.Client(apiKey: key);

        var bad = LocalTestCluster.SmallSpec();
        bad.Loss = new LossSpec { Beta = 0 };
        bad.SamplesPerPrompt = 1;
        bad.Sampling.Temperature = -1;
        bad.Prompts.Task = "chess";
        var invalid = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = bad }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        foreach (var field in new[] { "loss.beta", "samples_per_prompt", "sampling.temperature", "prompts.task" })
            Assert.Contains(field, invalid.Status.Detail);

        // A request over Api:MaxRequestBytes (1 MiB) is refused before it is read (the calls below show the silo still serves).
        var oversized = LocalTestCluster.SmallSpec();
        oversized.Judge = new JudgeSpec { Template = new string('x', (1 << 20) + 1) };
        var exhausted = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = oversized }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, exhausted.StatusCode);

        // Negative and huge counts are INVALID_ARGUMENT naming the field, its value and the limit (never UNKNOWN).
        var huge = LocalTestCluster.SmallSpec();
        huge.Rounds = -1;
        huge.PromptsPerRound = 2_000_000_000;
        huge.SamplesPerPrompt = 100_000;
        huge.MaxPhaseAttempts = 0;
        var tooBig = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = huge }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, tooBig.StatusCode);
        Assert.Contains("rounds must be between 1 and 500, got -1", tooBig.Status.Detail);
        Assert.Contains("prompts_per_round must be between 1 and 100000, got 2000000000", tooBig.Status.Detail);
        Assert.Contains("max_phase_attempts must be between 1 and 100, got 0", tooBig.Status.Detail);
        huge.Rounds = 501;
        Assert.Contains("rounds must be between 1 and 500, got 501", (await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = huge }).ResponseAsync)).Status.Detail);

        // The newer fields: each bad value named with its field.
        var newer = LocalTestCluster.SmallSpec();
        newer.EftExamples = -1;
        newer.EftSource = "the_internet";
        newer.Judge = new JudgeSpec { Template = "no placeholders", Model = "someone", MaxNewTokens = 5000 };
        newer.Loss = new LossSpec { SelmAlpha = double.NaN, RpoAlpha = 1e9 };
        var newerError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = newer }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, newerError.StatusCode);
        foreach (var expected in new[] { "eft_examples must be between 0 and 100000, got -1", "judge.template", "judge.model 'someone'",
                     "loss.selm_alpha must be a finite number, got NaN", "loss.rpo_alpha must be at most 1000, got 1000000000",
                     "eft_source 'the_internet' is not one of corruptions, own_samples", "judge.max_new_tokens must be between 1 and 4096, got 5000" })
            Assert.Contains(expected, newerError.Status.Detail);
        // judge.implicit_agreement belongs to the LLM judge, and a guard bound on that signal needs a judge that records it.
        var agreement = LocalTestCluster.SmallSpec();
        agreement.Judge = new JudgeSpec { Kind = "majority", ImplicitAgreement = true };
        agreement.Guard = new GuardSpec { MinImplicitAgreement = 0 };
        var agreementError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = agreement }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, agreementError.StatusCode);
        Assert.Contains("judge.implicit_agreement is for judge.kind 'llm'", agreementError.Status.Detail);
        Assert.Contains("guard.min_implicit_agreement reads health/implicit_agreement, which judge.kind 'majority' does not record", agreementError.Status.Detail);
        // The protocol, M0, data-parallel and control fields (issues 28 and 29): each bad value named with its field, at both ends of its range.
        var protocol = LocalTestCluster.SmallSpec();
        protocol.Prompts.EvalStream = "holdout";
        protocol.Model = new ModelSpec { PretrainSteps = -1, BaseFolder = "/somewhere/m0" };
        protocol.Optimizer = new OptimizerSpec { GradientAccumulation = 0, DataParallel = "sometimes" };
        protocol.PairStrategy = "random";
        protocol.Loss = new LossSpec { Kind = "rft", RpoAlpha = 0.5 };
        protocol.SftLearningRate = 0;
        var protocolError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = protocol }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, protocolError.StatusCode);
        foreach (var expected in new[] { "prompts.eval_stream 'holdout' is not one of validation, test", "model.pretrain_steps must be between 0 and 1000000, got -1",
                     "model.base_folder needs model.hf_folder", "optimizer.gradient_accumulation must be between 1 and 4096, got 0",
                     "optimizer.data_parallel must be one of auto, on, off, got 'sometimes'", "loss.kind 'rft' trains on the judge's best sample, which pair_strategy 'random'",
                     "loss.rpo_alpha 0.5 with loss.kind 'rft'", "sft_learning_rate must be > 0, got 0" })
            Assert.Contains(expected, protocolError.Status.Detail);
        protocol = LocalTestCluster.SmallSpec();
        protocol.Prompts.EvalStream = new string('v', 100_000);
        protocol.Model = new ModelSpec { PretrainSteps = 1_000_001 };
        protocol.Optimizer = new OptimizerSpec { GradientAccumulation = 4097 };
        protocol.SftLearningRate = double.NaN;
        protocolError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = protocol }).ResponseAsync);
        foreach (var expected in new[] { "prompts.eval_stream is 100000 characters long; the limit is 256", "model.pretrain_steps must be between 0 and 1000000, got 1000001",
                     "optimizer.gradient_accumulation must be between 1 and 4096, got 4097", "sft_learning_rate must be a finite number, got NaN" })
            Assert.Contains(expected, protocolError.Status.Detail);
        Assert.DoesNotContain(new string('v', 1000), protocolError.Status.Detail);
        // The other control for the preference losses (shuffled scores) is refused with RFT, named by both fields.
        protocol = LocalTestCluster.SmallSpec();
        protocol.PairStrategy = "shuffled_scores";
        protocol.Loss = new LossSpec { Kind = "rft" };
        protocolError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = protocol }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, protocolError.StatusCode);
        Assert.Contains("loss.kind 'rft' trains on the judge's best sample, which pair_strategy 'shuffled_scores' does not choose", protocolError.Status.Detail);
        // The remote judge's fields, each below or above its bounds (the endpoint's address rules: RemoteEndpointTests).
        var remote = LocalTestCluster.SmallSpec();
        remote.Judge = new JudgeSpec
        {
            Kind = "remote", Endpoint = "https://judge.example/v1?key=abc", ApiKeyEnv = "sk-not-a-name", ApiKeyFile = "/keys/judge",
            Concurrency = 0, TimeoutSeconds = 3601, MaxAttempts = 21, Temperature = double.NaN, Template = "compact",
        };
        var remoteError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = remote }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, remoteError.StatusCode);
        foreach (var expected in new[] { "judge.concurrency must be between 1 and 256, got 0", "judge.timeout_seconds must be between 1 and 3600, got 3601",
                     "judge.max_attempts must be between 1 and 20, got 21", "judge.temperature must be a finite number, got NaN",
                     "judge.api_key_env 'sk-not-a-name' is not an environment variable name", "judge.remote_model is required",
                     "judge.api_key_env and judge.api_key_file are both set", "judge.template 'compact' reads the judge's score-digit probabilities",
                     "judge.endpoint has a query or fragment" })
            Assert.Contains(expected, remoteError.Status.Detail);
        remote.Judge = new JudgeSpec
        {
            Kind = "remote", Endpoint = "ftp://judge.example/v1", RemoteModel = "m", Concurrency = 257, TimeoutSeconds = 0, MaxAttempts = 0, Temperature = 2.5,
        };
        remoteError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = remote }).ResponseAsync);
        foreach (var expected in new[] { "judge.concurrency must be between 1 and 256, got 257", "judge.timeout_seconds must be between 1 and 3600, got 0",
                     "judge.max_attempts must be between 1 and 20, got 0", "judge.temperature must be at most 2, got 2.5",
                     "judge.endpoint 'ftp://judge.example/v1' is not an absolute http or https URL" })
            Assert.Contains(expected, remoteError.Status.Detail);
        // Self-Rewarding's rubric cannot fit the built-in model's context: refused at StartRun, not in the judge phase.
        var rubric = LocalTestCluster.SmallSpec();
        rubric.Judge = new JudgeSpec { Kind = "llm", Template = "rubric" };
        var rubricError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = rubric }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, rubricError.StatusCode);
        Assert.Contains("judge.max_new_tokens 256: the LLM judge reads judge.template 'rubric'", rubricError.Status.Detail);
        Assert.Contains("exceed the model's context of 128", rubricError.Status.Detail);
        // This session's fields: LoRA, the chat template, the planned batch (0 is valid, below it is not).
        var lora = LocalTestCluster.SmallSpec();
        lora.Model = new ModelSpec { ChatTemplate = "vicuna", Lora = new LoraSpec { R = 0, Alpha = double.NaN, Dropout = 1, TargetModules = { "c_attn" } } };
        lora.Sampling.BatchSize = -1;
        var loraError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = lora }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, loraError.StatusCode);
        foreach (var expected in new[] { "model.lora.r must be between 1 and 1024, got 0", "model.lora.alpha must be a finite number", "model.lora.dropout must be in [0, 1), got 1",
                     "model.lora.target_modules: 'c_attn' is not one of", "sampling.batch_size must be between 0 and 4096, got -1" })
            Assert.Contains(expected, loraError.Status.Detail);
        lora.Model.Lora = new LoraSpec { TargetModules = { Enumerable.Repeat("q_proj", 100_000) } };
        lora.Sampling.BatchSize = 0;
        var chatError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = lora }).ResponseAsync);
        Assert.Contains("model.lora.target_modules names 100000 modules; there are 7 to adapt", chatError.Status.Detail);
        lora.Model.Lora = new LoraSpec();
        chatError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = lora }).ResponseAsync);
        Assert.Contains("model.chat_template 'vicuna' is not one of auto, plain, chatml, llama3", chatError.Status.Detail);

        // The budget and retention sections: each bound named with its field.
        var kept = LocalTestCluster.SmallSpec();
        kept.Budget = new BudgetSpec { MaxTokensPerRound = 0, MaxPhaseSeconds = -5 };
        kept.Retention = new RetentionSpec { KeepLast = -1, BestMetric = " " };
        var keptError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = kept }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, keptError.StatusCode);
        foreach (var expected in new[] { "budget.max_tokens_per_round must be between 1 and 1000000000000, got 0", "budget.max_phase_seconds must be between 1 and 2592000, got -5",
                     "retention.keep_last must be between 0 and 500, got -1", "retention.best_metric must name a round metric" })
            Assert.Contains(expected, keptError.Status.Detail);
        kept.Budget = new BudgetSpec { MaxTokensPerRound = long.MaxValue, MaxPhaseSeconds = int.MaxValue };
        kept.Retention = new RetentionSpec { KeepLast = 501, BestMetric = new string('m', 100_000) };
        keptError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = kept }).ResponseAsync);
        foreach (var expected in new[] { $"budget.max_tokens_per_round must be between 1 and 1000000000000, got {long.MaxValue}",
                     $"budget.max_phase_seconds must be between 1 and 2592000, got {int.MaxValue}", "retention.keep_last must be between 0 and 500, got 501",
                     "retention.best_metric is 100000 characters long" })
            Assert.Contains(expected, keptError.Status.Detail);

        // The guard's pairwise set: its size at both ends, and a bad line of its file named with the file and the line.
        var pairwise = LocalTestCluster.SmallSpec();
        pairwise.Guard = new GuardSpec { PairwisePairs = -1, PairwiseJsonl = new string('p', 5000), MaxKlInitialPerToken = -0.5,
            MaxScoreEntropy = 1.01, MinMajorityAgreement = 1.5, MaxScoreEntropyRise = -0.01 };
        var pairwiseError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = pairwise }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, pairwiseError.StatusCode);
        foreach (var expected in new[] { "guard.pairwise_pairs must be between 0 and 1024, got -1", "guard.pairwise_jsonl is 5000 characters long; the limit is 4096",
                     "guard.max_kl_initial_per_token must be >= 0, got -0.5", "guard.max_score_entropy must be at most 1, got 1.01",
                     "guard.min_majority_agreement must be at most 1, got 1.5", "guard.max_score_entropy_rise must be >= 0, got -0.01" })
            Assert.Contains(expected, pairwiseError.Status.Detail);
        string pairsFile = Path.Combine(RepositoryPaths.NewTempFolder("pairwise"), "pairs.jsonl");
        File.WriteAllLines(pairsFile, ["{\"prompt\": \"sort 31=\", \"chosen\": \"13\", \"rejected\": \"31\"}", "{\"prompt\": \"sort 21=\", \"chosen\": 12}"]);
        pairwise.Guard = new GuardSpec { PairwisePairs = 1025, PairwiseJsonl = pairsFile, MaxKlInitialPerToken = double.PositiveInfinity };
        pairwiseError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = pairwise }).ResponseAsync);
        Assert.Contains("guard.pairwise_pairs must be between 0 and 1024, got 1025", pairwiseError.Status.Detail);
        Assert.Contains("guard.max_kl_initial_per_token must be a finite number", pairwiseError.Status.Detail);
        pairwise.Guard = new GuardSpec { PairwiseJsonl = pairsFile };
        pairwiseError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = pairwise }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, pairwiseError.StatusCode);
        Assert.Contains($"guard.pairwise_jsonl: {pairsFile}:2: field 'chosen' must be a string", pairwiseError.Status.Detail);

        // The memory plan, checked by the silo that would run the spec against its device's memory: a spec that cannot
        // fit is refused before anything loads, naming the plan's parts, its peak and the budget, and what to change.
        var small = SpecConversion.FromProto(LocalTestCluster.SmallSpec());
        var fits = OnlineAlign.Execution.Specs.RunSpecMapping.Plan(small, cpu: true, DeviceBudget)!;
        Assert.True(fits.Peak < DeviceBudget / 2, $"the small spec's plan ({fits.Peak} bytes) must fit the test's budget");
        var overPlan = LocalTestCluster.SmallSpec();
        overPlan.Optimizer = new OptimizerSpec { BatchSize = 4096 };
        var device = new OnlineAlign.Execution.Specs.MemoryPlanning.DeviceBudget("cpu", DeviceBudget, Cpu: true);
        string planProblem = Assert.Single(OnlineAlign.Execution.Specs.RunSpecMapping.Problems(SpecConversion.FromProto(overPlan), device: device));
        var planError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = overPlan }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, planError.StatusCode);
        Assert.Contains(planProblem, planError.Status.Detail);
        Assert.StartsWith("model: the run does not fit cpu: memory plan", planProblem);
        Assert.Contains("of 256 MiB", planProblem);
        Assert.Contains("optimizer.gradient_checkpointing", planProblem);

        var badId = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = LocalTestCluster.SmallSpec(), RequestId = "a/b" }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badId.StatusCode);

        // A model folder whose tokenizer.json is broken, and a prompt file with a prompt too long for the context:
        // both refused before any work starts, naming the field, the file and the line.
        string model = RepositoryPaths.NewTempFolder("bad-tokenizer");
        foreach (var file in Directory.GetFiles(RepositoryPaths.Fixture("hf", "llama-tiny")))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        File.WriteAllText(Path.Combine(model, "tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
        var brokenTokenizer = LocalTestCluster.SmallSpec();
        brokenTokenizer.Model = new ModelSpec { HfFolder = model };
        var tokenizerError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = brokenTokenizer }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, tokenizerError.StatusCode);
        Assert.Contains("model.hf_folder", tokenizerError.Status.Detail);
        Assert.Contains("tokenizer", tokenizerError.Status.Detail);

        string prompts = Path.Combine(RepositoryPaths.NewTempFolder("prompts"), "prompts.jsonl");
        File.WriteAllLines(prompts, ["{\"prompt\": \"short\"}", "", $"{{\"prompt\": \"{new string('x', 300)}\"}}"]);
        var longPrompt = LocalTestCluster.SmallSpec();
        longPrompt.Prompts = new PromptSpec { JsonlPath = prompts };
        var lengthError = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = longPrompt }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, lengthError.StatusCode);
        Assert.Contains($"{prompts}:3: the prompt is 301 tokens", lengthError.Status.Detail);
        Assert.Contains("context of 128", lengthError.Status.Detail);
        Assert.Empty((await client.ListRunsAsync(new ListRunsRequest())).Runs); // nothing was started by any bad spec

        var missing = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync(new GetRunRequest { RunId = "nope" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        // The run is held inside its training step loop (after its first step) until the pause below: the pause lands
        // there, not wherever the run happens to be when the test gets to it.
        const string training = "train/round-1/step";
        cluster.Faults.Hold(training);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 1) });
        var wrong = await Assert.ThrowsAsync<RpcException>(() => client.ResumeRunAsync(new RunRef { RunId = run.Id }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, wrong.StatusCode);

        // Without the key: nothing but health answers.
        var anonymous = cluster.Client();
        var denied = await Assert.ThrowsAsync<RpcException>(() => anonymous.ListRunsAsync(new ListRunsRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, denied.StatusCode);
        var wrongKey = await Assert.ThrowsAsync<RpcException>(() => cluster.Client(apiKey: "other").ListRunsAsync(new ListRunsRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, wrongKey.StatusCode);
        using var channel = cluster.Silos[0].OpenChannel();
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest())).Status);

        Assert.Contains(run.Id, (await client.ListRunsAsync(new ListRunsRequest())).Runs.Select(r => r.Id));

        // The Prometheus endpoint is behind the same key (Prometheus sends it with `authorization: credentials:`).
        using (var http = new HttpClient())
        {
            string metricsUrl = $"http://127.0.0.1:{cluster.Silos[0].MetricsPort}/metrics";
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.GetAsync(metricsUrl)).StatusCode);
            using var withKey = new HttpRequestMessage(HttpMethod.Get, metricsUrl) { Headers = { { "Authorization", "Bearer " + key } } };
            Assert.Contains("onlinealign_process_memory_bytes", await (await http.SendAsync(withKey)).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        }

        // Pages are chosen by the port a connection reached, never by the Host/:authority header the client writes:
        // through the API port with the metrics port's authority (HTTP/2) nothing but gRPC answers, and on the
        // metrics port every page needs the key.
        using (var http = new HttpClient())
        {
            int apiPort = cluster.Silos[0].ApiPort, metricsPort = cluster.Silos[0].MetricsPort;
            foreach (var page in new[] { "/metrics", "/dashboard", "/dashboard/", "/dashboard/Trace", "/dashboard/DashboardCounters", "/dashboard/ClusterStats" })
            {
                using var spoofed = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{apiPort}{page}")
                    { Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
                spoofed.Headers.Host = $"127.0.0.1:{metricsPort}";
                Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.SendAsync(spoofed)).StatusCode);
                var anonymousPage = await http.GetAsync($"http://127.0.0.1:{metricsPort}{page}");
                Assert.Equal(System.Net.HttpStatusCode.Unauthorized, anonymousPage.StatusCode);
                Assert.Empty(await anonymousPage.Content.ReadAsByteArrayAsync());
            }
            // A browser's Basic credentials (any user, the key as password) open the dashboard; a wrong key does not.
            foreach (var (password, expected) in new[] { (key, System.Net.HttpStatusCode.OK), ("wrong", System.Net.HttpStatusCode.Unauthorized) })
            {
                using var basic = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{metricsPort}/dashboard/");
                basic.Headers.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("me:" + password)));
                Assert.Equal(expected, (await http.SendAsync(basic)).StatusCode);
            }
        }

        // WatchRun streams are capped per client (Api:MaxWatchStreamsPerClient, 2 here): a third is refused while two are open.
        var watches = new List<AsyncServerStreamingCall<RunEvent>>();
        for (int i = 0; i < 2; i++)
        {
            watches.Add(client.WatchRun(new WatchRunRequest { RunId = run.Id }));
            Assert.True(await watches[^1].ResponseStream.MoveNext()); // the first event: the stream holds its place
        }
        using (var third = client.WatchRun(new WatchRunRequest { RunId = run.Id }))
        {
            var capped = await Assert.ThrowsAsync<RpcException>(() => third.ResponseStream.MoveNext());
            Assert.Equal(StatusCode.ResourceExhausted, capped.StatusCode);
            Assert.Contains("Api:MaxWatchStreamsPerClient", capped.Status.Detail);
        }
        watches.ForEach(w => w.Dispose());

        // The CLI turns each of these into a message a user can act on and its own exit code (listed in --help).
        string api = $"http://127.0.0.1:{cluster.Silos[0].ApiPort}";
        var noKey = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "status", "--api", api, run.Id);
        Assert.Equal(5, noKey.ExitCode);
        Assert.Contains($"the silo at {api} refused the API key", noKey.Stderr);
        var unknown = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "status", "--api", api, "--api-key", key, "no-such-run");
        Assert.Equal(6, unknown.ExitCode);
        Assert.Contains("no-such-run", unknown.Stderr);
        var noSilo = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "runs", "--api", $"http://127.0.0.1:{OnlineAlign.Cli.Local.SiloLifecycle.FreePorts(1)[0]}");
        Assert.Equal(4, noSilo.ExitCode);
        Assert.Contains("no OnlineAlign silo answers at http://127.0.0.1:", noSilo.Stderr);
        Assert.Contains("onlinealign up", noSilo.Stderr);
        var help = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "--help");
        Assert.Contains("4 no OnlineAlign silo answers at the address; 5 missing or wrong API key; 6 unknown run", help.Stdout);

        // Pause stops the phase in flight (its output is never recorded); resume continues from the recorded phases.
        await cluster.Faults.WaitUntilReachedAsync(training, TimeSpan.FromMinutes(4));
        Assert.Equal("paused", (await client.PauseRunAsync(new RunRef { RunId = run.Id })).Status);
        await cluster.Silos[0].WaitForOutputAsync($"run {run.Id} round 1 train cancelled", TimeSpan.FromMinutes(1));
        cluster.Faults.Release(training);
        Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{run.Id}/round-0001/train/done-"));
        Assert.Equal("running", (await client.ResumeRunAsync(new RunRef { RunId = run.Id })).Status);
        var current = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(3));
        Assert.Equal(1, current.CommittedRounds);
        // Per-step metrics: a round that is not committed, a negative one, an unknown run.
        foreach (int round in new[] { 2, -1 })
        {
            var notCommitted = await Assert.ThrowsAsync<RpcException>(() => client.ListStepsAsync(new ListStepsRequest { RunId = run.Id, Round = round }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, notCommitted.StatusCode);
            Assert.Contains($"round {round} of run '{run.Id}' is not committed (committed: 1)", notCommitted.Status.Detail);
        }
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => client.ListStepsAsync(new ListStepsRequest { RunId = "nope" }).ResponseAsync)).StatusCode);
        Assert.NotEmpty((await client.ListStepsAsync(new ListStepsRequest { RunId = run.Id, Round = 1 })).Steps);
        // Steps come in pages: one step a page gives the same steps, in order, as one page of all.
        var allSteps = (await client.ListStepsAsync(new ListStepsRequest { RunId = run.Id })).Steps;
        Assert.True(allSteps.Count > 1);
        var paged = new List<TrainingStep>();
        string token = "";
        int pages = 0;
        do
        {
            var page = await client.ListStepsAsync(new ListStepsRequest { RunId = run.Id, PageSize = 1, PageToken = token });
            paged.AddRange(page.Steps);
            token = page.NextPageToken;
            pages++;
        } while (token.Length > 0);
        Assert.Equal(allSteps, paged);
        Assert.Equal(allSteps.Count, pages);
        foreach (var badPage in new[] { new ListStepsRequest { RunId = run.Id, PageSize = 10_001 }, new ListStepsRequest { RunId = run.Id, PageToken = "../1" } })
            Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => client.ListStepsAsync(badPage).ResponseAsync)).StatusCode);
        var finished = await Assert.ThrowsAsync<RpcException>(() => client.ResumeRunAsync(new RunRef { RunId = run.Id }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, finished.StatusCode);

        // A learning rate that blows the weights up: the loss turns NaN, the run pauses naming round and step,
        // and nothing is committed from the diverged round.
        var diverging = LocalTestCluster.SmallSpec(rounds: 2);
        diverging.Optimizer = new OptimizerSpec { LearningRate = 1e12, BatchSize = 4 };
        var divergingRun = await client.StartRunAsync(new StartRunRequest { Spec = diverging });
        // Prepare, round 0's evaluation and round 1's first phases come first: the bound is as loose as the suite's other runs'.
        current = await RunProbe.WaitForAsync(client, divergingRun.Id, r => r.Status is not ("running" or "waiting_for_gpu"), TimeSpan.FromMinutes(6));
        Assert.Equal("paused", current.Status);
        Assert.Contains("round 1", current.Error);
        Assert.Contains("training step", current.Error);
        Assert.Equal(0, current.CommittedRounds);
        Assert.DoesNotContain(key, cluster.Silos[0].Output);
    }
}
