# Usage: python3 transformers_load_check.py POLICY_FOLDER OURS_JSON
# where OURS_JSON is `onlinealign inspect --model POLICY_FOLDER --ids ... --all-positions --greedy 8 --response 52,53,55,2`.
# Does Hugging Face transformers load a policy folder OnlineAlign exported, and compute the same thing?
import json, sys, torch
from transformers import AutoModelForCausalLM
ours = json.load(open(sys.argv[2]))
m = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32).eval()
ids = torch.tensor([ours["input_ids"]])
with torch.no_grad():
    logits = m(ids).logits[0]
diff = (logits - torch.tensor(ours["logits"])).abs().max().item()
seq = ids
with torch.no_grad():
    for _ in range(8):  # plain greedy without stopping at EOS, as `inspect --greedy` does
        seq = torch.cat([seq, m(seq).logits[:, -1:].argmax(-1)], 1)
out = seq[0, ids.shape[1]:].tolist()
resp = [52, 53, 55, 2]
full = torch.tensor([ours["input_ids"] + resp])
with torch.no_grad():
    lp = m(full).logits[0, :-1].log_softmax(-1)
s = sum(lp[len(ours["input_ids"]) - 1 + i, t].item() for i, t in enumerate(resp))
print(f"transformers loaded {type(m).__name__}; max |logit diff| vs OnlineAlign = {diff:.2e}; "
      f"greedy equal: {out == ours['greedy']} ({out}); response logprob sum {s:.5f} vs {ours['response_logprobs']['sum']:.5f}")
