# Usage: python3 peft_load_check.py ADAPTER_EXPORT OURS_JSON
# where ADAPTER_EXPORT is `onlinealign export` of a LoRA run's later round: a PEFT adapter folder whose
# adapter_config.json names, as base_model_name_or_path, the absolute path of the base/ subfolder the export includes
# (a plain Hugging Face folder: the run's round 0 without its adapter). OURS_JSON is
# `onlinealign inspect --model MERGED --ids ... --all-positions --greedy 0` on `onlinealign merge-adapter
# --base ADAPTER_EXPORT/base --adapter ADAPTER_EXPORT`'s output.
# Checks that the base loads as a plain model (no adapter_config.json for transformers to follow), that PEFT's
# documented loader (PeftModel.from_pretrained) and transformers' own adapter loading (from_pretrained on the adapter
# folder, which follows base_model_name_or_path) both compute what OnlineAlign computes, and that merge_and_unload()
# agrees with OnlineAlign's merged folder.
import json, os, sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
adapter_folder, ours = sys.argv[1], json.load(open(sys.argv[2]))
base_folder = json.load(open(os.path.join(adapter_folder, "adapter_config.json")))["base_model_name_or_path"]
assert os.path.isdir(base_folder), f"adapter_config.json names base {base_folder!r}, which is not a folder here"
assert not os.path.exists(os.path.join(base_folder, "adapter_config.json")), f"{base_folder} is not a plain base"
ids = torch.tensor([ours["input_ids"]])
theirs = torch.tensor(ours["logits"])
base = AutoModelForCausalLM.from_pretrained(base_folder, torch_dtype=torch.float32)
model = PeftModel.from_pretrained(base, adapter_folder).eval()
auto = AutoModelForCausalLM.from_pretrained(adapter_folder, torch_dtype=torch.float32).eval()
with torch.no_grad():
    adapted = model(ids).logits[0]
    followed = auto(ids).logits[0]
    merged = model.merge_and_unload()(ids).logits[0]
print(f"PEFT loaded {type(model).__name__} (r {model.peft_config['default'].r}, alpha {model.peft_config['default'].lora_alpha}) on {base_folder}; "
      f"max |logit diff| vs OnlineAlign's merged folder: adapter {(adapted - theirs).abs().max().item():.2e}, "
      f"transformers following adapter_config.json {(followed - theirs).abs().max().item():.2e}, "
      f"PEFT's merge {(merged - theirs).abs().max().item():.2e}")
