"""The same measurements as `OnlineAlign.Benchmarks model --model qwen2-0.5b`, in PyTorch eager +
transformers, so both run on the same GPU in the same session. Prints lines in the same format."""
import argparse, time
import torch
import torch.nn.functional as F
from transformers import Qwen2ForCausalLM
from model_shapes import qwen2_0_5b

p = argparse.ArgumentParser()
p.add_argument("--batches", default="1,8,32")
p.add_argument("--prompt", type=int, default=64)
p.add_argument("--new", type=int, default=64)
p.add_argument("--pairs", type=int, default=8)
p.add_argument("--tokens", type=int, default=512)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--peak-tflops", type=float, default=989)
p.add_argument("--logits-to-keep", action="store_true",
               help="LM head only over the response half, as TRL's use_logits_to_keep (default: every position, TRL's default)")
a = p.parse_args()

dev = torch.device("cuda")
def sync(): torch.cuda.synchronize()
def timed(fn, n):
    sync(); t = time.perf_counter()
    for _ in range(n): fn()
    sync(); return (time.perf_counter() - t) / n

x = torch.randn(8192, 8192, dtype=torch.bfloat16, device=dev); y = torch.randn_like(x)
for _ in range(3): x @ y
s = timed(lambda: x @ y, 20)
print(f"pytorch {torch.__version__}: bf16 matmul 8192^3: {2 * 8192**3 / s / 1e12:.1f} TFLOP/s")
del x, y

cfg = qwen2_0_5b()
torch.manual_seed(0)
with torch.device(dev):
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
n_params = sum(t.numel() for t in model.parameters())
print(f"model qwen2-0.5b (transformers): {n_params / 1e6:.1f}M parameters, bf16, sdpa")

g = torch.Generator().manual_seed(0)
model.eval()
for batch in [int(b) for b in a.batches.split(",")]:
    ids = torch.randint(3, cfg.vocab_size, (batch, a.prompt), generator=g).to(dev)
    mask = torch.ones_like(ids)
    for label, kw in [("greedy", dict(do_sample=False)),
                      ("sampling T0.8 top-p0.95", dict(do_sample=True, temperature=0.8, top_p=0.95, top_k=0))]:
        run = lambda n=a.new: model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, **kw)
        with torch.no_grad():
            run(4)
            s = timed(run, a.repeats)
        print(f"generate() batch {batch:3d} {label:<24} {a.prompt}-token prompts, {a.new} new: {batch * a.new / s:10.0f} new tokens/s ({s * 1000:.0f} ms)")

model.train()
rows = 2 * a.pairs
ids = torch.randint(3, cfg.vocab_size, (rows, a.tokens), generator=g).to(dev)
resp = torch.zeros(rows, a.tokens - 1, device=dev); resp[:, a.tokens // 2 - 1:] = 1
keep = a.tokens - a.tokens // 2  # positions that predict a response token
def logps():
    if a.logits_to_keep:
        logits = model(ids[:, :-1], logits_to_keep=keep).logits.float()
        return logits.log_softmax(-1).gather(-1, ids[:, -keep:].unsqueeze(-1)).squeeze(-1).sum(1)
    logits = model(ids[:, :-1]).logits.float()
    return (logits.log_softmax(-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1) * resp).sum(1)
with torch.no_grad():
    s = timed(logps, a.repeats)
    ref = logps()
tokens = rows * a.tokens
print(f"log-probs (no grad) {rows} x {a.tokens} tokens: {tokens / s:.0f} tokens/s ({s * 1000:.0f} ms)")
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-6, fused=True)
def step():
    opt.zero_grad(set_to_none=True)
    h = (logps() - ref).view(-1, 2)
    loss = -F.logsigmoid(0.1 * (h[:, 0] - h[:, 1])).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
step()
torch.cuda.reset_peak_memory_stats()
s = timed(step, a.repeats)
tf = 6 * n_params * tokens / s / 1e12
# The work done, counted as OnlineAlign's model benchmark counts it: matmul parameters per token, the LM head
# (tied: the embedding matrix) only where logits are computed.
head = cfg.vocab_size * cfg.hidden_size
done = 6 * ((n_params - head) * tokens + head * rows * (keep if a.logits_to_keep else a.tokens - 1)) / s / 1e12
where = "at response tokens" if a.logits_to_keep else "everywhere"
print(f"DPO train step {a.pairs} pairs x {a.tokens} tokens (fwd+bwd, fp32 log-softmax {where}, AdamW fused, clip): "
      f"{tokens / s:.0f} tokens/s, {s * 1000:.0f} ms, {tf:.2f} TFLOP/s at 6N per token, MFU {100 * tf / a.peak_tflops:.1f}% of {a.peak_tflops}; "
      f"work done {done:.2f} TFLOP/s ({100 * done / a.peak_tflops:.1f}%), peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
