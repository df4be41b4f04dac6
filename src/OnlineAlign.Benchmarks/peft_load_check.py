# Usage: python3 peft_load_check.py BASE_FOLDER ADAPTER_FOLDER OURS_JSON
# where ADAPTER_FOLDER is `onlinealign export` of a LoRA run's round (a PEFT adapter folder), BASE_FOLDER its base
# (the run's model.hf_folder or its exported round 0), and OURS_JSON is
# `onlinealign inspect --model MERGED --ids ... --all-positions --greedy 0` on `onlinealign merge-adapter`'s output.
# Does PEFT load the adapter by its documented loader (PeftModel.from_pretrained) and compute what OnlineAlign computes,
# and does merge_and_unload() agree with OnlineAlign's merged folder?
import json, sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base_folder, adapter_folder, ours = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
base = AutoModelForCausalLM.from_pretrained(base_folder, torch_dtype=torch.float32)
model = PeftModel.from_pretrained(base, adapter_folder).eval()
ids = torch.tensor([ours["input_ids"]])
with torch.no_grad():
    adapted = model(ids).logits[0]
    merged = model.merge_and_unload()(ids).logits[0]
theirs = torch.tensor(ours["logits"])
print(f"PEFT loaded {type(model).__name__} (r {model.peft_config['default'].r}, alpha {model.peft_config['default'].lora_alpha}); "
      f"max |logit diff| vs OnlineAlign's merged folder: adapter {(adapted - theirs).abs().max().item():.2e}, "
      f"PEFT's merge {(merged - theirs).abs().max().item():.2e}")
