"""The round of `OnlineAlign.Benchmarks round` in PyTorch eager + transformers, phase for phase, to run in
the same session on the same GPU: generate N samples per prompt (HF generate, chunks of 64 sequences),
judge with the implicit reward (current and previous round's judge, as CREAM), best-vs-worst pairs with
reference log-probs, one epoch of DPO (AdamW, clip 1.0, fp32 log-softmax), evaluation (greedy + sampled
continuations, KL estimates). Random weights; prompts are random letters as byte tokens (id = byte + 3,
BOS 1), so the shapes match the C# side. Prints one line per round in the same format.
NOT YET RUN: written without a GPU or PyTorch at hand; run it next to the C# command before trusting it."""
import argparse, copy, time
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2ForCausalLM
from model_shapes import qwen2_0_5b

p = argparse.ArgumentParser()
p.add_argument("--model", default="qwen2-0.5b", choices=["qwen2-0.5b", "llama-50m"])
p.add_argument("--rounds", type=int, default=2)
p.add_argument("--prompts", type=int, default=64)
p.add_argument("--prompt", type=int, default=64)
p.add_argument("--samples", type=int, default=4)
p.add_argument("--new", type=int, default=64)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--eval", type=int, default=32)
p.add_argument("--peak-tflops", type=float, default=989)
a = p.parse_args()
dev = torch.device("cuda")
torch.manual_seed(0)
BOS, EOS, PAD = 1, 2, 0

if a.model == "qwen2-0.5b":
    cfg = qwen2_0_5b(eos_token_id=EOS, pad_token_id=PAD)
    cls = Qwen2ForCausalLM
else:
    cfg = LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=6, num_attention_heads=8,
                      num_key_value_heads=8, head_dim=64, rms_norm_eps=1e-5, rope_theta=10000, max_position_embeddings=2048,
                      tie_word_embeddings=False, eos_token_id=EOS, pad_token_id=PAD)
    cls = LlamaForCausalLM
cfg._attn_implementation = "sdpa"
with torch.device(dev):
    policy = cls(cfg).to(torch.bfloat16)
initial = copy.deepcopy(policy).eval()
n_params = sum(t.numel() for t in policy.parameters())
print(f"pytorch {torch.__version__} round: model {a.model} ({n_params / 1e6:.1f}M parameters, bf16, sdpa); "
      f"{a.prompts} prompts x {a.samples} samples, {a.prompt}-token prompts, {a.new} new tokens, batch {a.batch}")
gen = torch.Generator().manual_seed(0)
def prompts(n): return [[BOS] + (torch.randint(0, 26, (a.prompt - 1,), generator=gen) + 97 + 3).tolist() for _ in range(n)]
def sync(): torch.cuda.synchronize()

@torch.no_grad()
def generate(model, rows, sample):
    out = []
    for i in range(0, len(rows), 64):
        ids = torch.tensor(rows[i:i + 64], device=dev)
        seq = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=a.new, do_sample=sample,
                             temperature=1.0 if sample else None, top_p=1.0 if sample else None, top_k=0 if sample else None,
                             eos_token_id=EOS, pad_token_id=PAD)
        out += [s[ids.shape[1]:].tolist() for s in seq]
    return out

def sequence_logps(model, pairs, chunk=32, grad=False):
    """Sum of response-token log-probs per (prompt, response), right-padded, fp32 log-softmax."""
    sums = []
    for i in range(0, len(pairs), chunk):
        part = pairs[i:i + chunk]
        width = max(len(pr) + len(r) for pr, r in part)
        ids = torch.full((len(part), width), PAD, device=dev)
        mask = torch.zeros((len(part), width), device=dev)
        attention = torch.zeros((len(part), width), dtype=torch.long, device=dev)
        for k, (pr, r) in enumerate(part):
            ids[k, :len(pr) + len(r)] = torch.tensor(pr + r, device=dev)
            mask[k, len(pr):len(pr) + len(r)] = 1
            attention[k, :len(pr) + len(r)] = 1
        with torch.set_grad_enabled(grad):
            logits = model(ids, attention_mask=attention).logits[:, :-1].float()
            lp = logits.log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0] * mask[:, 1:]
            sums.append(lp.sum(1))
    return torch.cat(sums)

trained_from, trained_from_before = None, None
eval_prompts = prompts(a.eval)
for rnd in range(1, a.rounds + 1):
    t = {}
    rows = prompts(a.prompts)
    sync(); s = time.perf_counter()
    responses = generate(policy, [r for r in rows for _ in range(a.samples)], True)
    sync(); t["generate"] = time.perf_counter() - s; s = time.perf_counter()
    flat = [(rows[i // a.samples], responses[i]) for i in range(len(responses))]
    policy.eval()
    cur = sequence_logps(policy, flat)
    scores = cur - sequence_logps(trained_from, flat) if trained_from is not None else cur / torch.tensor([max(1, len(r)) for _, r in flat], device=dev)
    if trained_from is not None:  # the previous round's judge, for CREAM's consistency
        prev = sequence_logps(trained_from, flat)
        if trained_from_before is not None: prev = prev - sequence_logps(trained_from_before, flat)
    scores = scores.view(a.prompts, a.samples)
    sync(); t["judge"] = time.perf_counter() - s; s = time.perf_counter()
    best, worst = scores.argmax(1).tolist(), scores.argmin(1).tolist()
    pairs = [(rows[i], responses[i * a.samples + b], responses[i * a.samples + w]) for i, (b, w) in enumerate(zip(best, worst)) if b != w]
    ref_c = sequence_logps(policy, [(pr, c) for pr, c, _ in pairs])
    ref_r = sequence_logps(policy, [(pr, r) for pr, _, r in pairs])
    sync(); t["pairs"] = time.perf_counter() - s; s = time.perf_counter()
    round_start = copy.deepcopy(policy).eval()
    policy.train()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-6, weight_decay=0.0)
    tokens = 0
    for i in range(0, len(pairs), a.batch):
        part = pairs[i:i + a.batch]
        lp = sequence_logps(policy, [(pr, c) for pr, c, _ in part] + [(pr, r) for pr, _, r in part], chunk=2 * len(part), grad=True)
        n = len(part)
        margin = (lp[:n] - ref_c[i:i + n]) - (lp[n:] - ref_r[i:i + n])
        loss = -F.logsigmoid(0.1 * margin).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        tokens += sum(2 * len(pr) + len(c) + len(r) for pr, c, r in part)
    sync(); t["train"] = time.perf_counter() - s; s = time.perf_counter()
    policy.eval()
    generate(policy, eval_prompts, False)
    sampled = generate(policy, eval_prompts, True)
    rows_eval = list(zip(eval_prompts, sampled))
    own = sequence_logps(policy, rows_eval)
    (own - sequence_logps(round_start, rows_eval)).mean().item(); (own - sequence_logps(initial, rows_eval)).mean().item()
    sync(); t["evaluate"] = time.perf_counter() - s
    trained_from_before, trained_from = trained_from, round_start
    generated = sum(len(r) for r in responses)
    mfu = 100 * 6 * n_params * tokens / t["train"] / (a.peak_tflops * 1e12)
    print(f"round {rnd}: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()) +
          f" | generation {generated / t['generate']:.0f} new tokens/s | training {tokens / t['train']:.0f} tokens/s, MFU {mfu:.1f}%")
