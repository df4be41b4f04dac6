"""The generation workloads of `OnlineAlign.Benchmarks engine` and `throughput`, in transformers' generate() (and
vLLM where it is installed), on the same random-weight Qwen2-0.5B shape, so both run on the same GPU in one call.

  --workload round     256 prompts x 8 samples, 64-token prompts, up to 64 new tokens, temperature 1, a twelfth of
                       the vocabulary ends a response (as the engine benchmark's stop ids), batches of 256 rows
  --workload nanovllm  nano-vllm's bench.py: 256 sequences, random ids below 10,000, prompts of 100-1024 tokens, each
                       with its own output length of 100-1024, temperature 0.6, EOS ignored

Prints lines in the engine benchmark's format. generate() decodes a static batch: in the nanovllm workload it runs
every row to the longest output and only each row's own length is counted, as a static-batch engine would be used.
"""
import argparse, random, time
import torch
from transformers import Qwen2ForCausalLM
from model_shapes import qwen2_0_5b

p = argparse.ArgumentParser()
p.add_argument("--workload", choices=["round", "nanovllm"], default="round")
p.add_argument("--prompts", type=int, default=256)
p.add_argument("--samples", type=int, default=8)
p.add_argument("--prompt", type=int, default=64)
p.add_argument("--new", type=int, default=64)
p.add_argument("--batch", type=int, default=256)
p.add_argument("--vllm", action="store_true", help="also run vLLM on the nanovllm workload, if it imports")
a = p.parse_args()

dev = torch.device("cuda")
cfg = qwen2_0_5b()
torch.manual_seed(0)
with torch.device(dev):
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16).eval()
print(f"model qwen2-0.5b (transformers {__import__('transformers').__version__}, torch {torch.__version__}): bf16, sdpa")


def timed(fn):
    torch.cuda.synchronize(); t = time.perf_counter(); out = fn(); torch.cuda.synchronize()
    return out, time.perf_counter() - t


if a.workload == "round":
    stop = [t for t in range(3, cfg.vocab_size) if t % 12 == 0]
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(3, cfg.vocab_size, (a.prompts, a.prompt), generator=g)
    per_batch = max(1, a.batch // a.samples)
    with torch.no_grad():
        model.generate(prompts[:2].to(dev), max_new_tokens=4, do_sample=True)   # warm-up
        def run():
            tokens = 0
            for i in range(0, a.prompts, per_batch):
                ids = prompts[i:i + per_batch].to(dev)
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                     max_new_tokens=a.new, num_return_sequences=a.samples, eos_token_id=stop, pad_token_id=0)
                new = out[:, a.prompt:]
                # A row's tokens run to its first stop id, inclusive; after it generate() pads.
                is_stop = torch.isin(new, torch.tensor(stop, device=dev))
                first = torch.where(is_stop.any(1), is_stop.int().argmax(1) + 1, torch.full_like(is_stop[:, 0], new.shape[1], dtype=torch.long))
                tokens += int(first.sum())
            return tokens
        tokens, s = timed(run)
    rows = a.prompts * a.samples
    print(f"generate() {a.prompts} prompts x {a.samples} samples, {a.prompt}-token prompts, up to {a.new} new, batch {per_batch * a.samples}: "
          f"{s:.2f} s, {tokens} new tokens ({tokens / rows:.1f} a response), {tokens / s:.0f} new tokens/s")
else:
    random.seed(0)
    seqs = [[random.randint(0, 10000) for _ in range(random.randint(100, 1024))] for _ in range(256)]
    lengths = [random.randint(100, 1024) for _ in range(256)]
    total = sum(lengths)
    print(f"nano-vllm's shape: 256 sequences, prompts {sum(map(len, seqs))} tokens in all, outputs {total} in all")
    width = max(map(len, seqs))
    ids = torch.tensor([[0] * (width - len(s)) + s for s in seqs], device=dev)           # left-padded
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=dev)
    with torch.no_grad():
        model.generate(ids[:2, -16:], max_new_tokens=4, do_sample=True)   # warm-up
        _, s = timed(lambda: model.generate(ids, attention_mask=mask, do_sample=True, temperature=0.6, top_k=0,
                                            max_new_tokens=max(lengths), min_new_tokens=max(lengths), pad_token_id=0))
    print(f"generate() static batch of 256 to the longest output ({max(lengths)}): {s:.2f} s, {total} output tokens counted, {total / s:.0f} output tokens/s")
    if a.vllm:
        try:
            import tempfile
            from vllm import LLM, SamplingParams
            folder = tempfile.mkdtemp()
            model.save_pretrained(folder)
            llm = LLM(folder, skip_tokenizer_init=True, enforce_eager=False, max_model_len=4096)
            params = [SamplingParams(temperature=0.6, ignore_eos=True, max_tokens=n) for n in lengths]
            llm.generate([{"prompt_token_ids": [1, 2, 3]}], SamplingParams(max_tokens=4))   # warm-up
            _, s = timed(lambda: llm.generate([{"prompt_token_ids": q} for q in seqs], params, use_tqdm=False))
            print(f"vLLM {__import__('vllm').__version__}: {s:.2f} s, {total} output tokens, {total / s:.0f} output tokens/s")
        except Exception as e:   # not installed, or no model support: say so and go on
            print(f"vLLM not run: {type(e).__name__}: {str(e)[:200]}")
