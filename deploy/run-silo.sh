#!/usr/bin/env bash
# Starts one OnlineAlign silo of a multi-machine cluster.
# Usage: ONLINEALIGN_STORAGE=... deploy/run-silo.sh <control|gpu> <this machine's address> [published silo folder]
set -euo pipefail
role=${1:?role: control or gpu}
address=${2:?the address other silos reach this machine on}
folder=${3:-out/silo}
: "${ONLINEALIGN_STORAGE:?set ONLINEALIGN_STORAGE to the shared Azure Storage connection string}"
export Silo__ClusterId=${Silo__ClusterId:-onlinealign}
export Silo__ListenAddress=$address
if [ "$role" = control ]; then export Api__ListenAddress=${Api__ListenAddress:-$address}; fi
if [ "$role" = gpu ] && [ -z "${TORCH_LIB_DIR:-}" ] && command -v python3 >/dev/null; then
  # Use an existing PyTorch install's CUDA libtorch when there is one.
  TORCH_LIB_DIR=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))' 2>/dev/null || true)
  [ -n "$TORCH_LIB_DIR" ] && export LD_LIBRARY_PATH="$TORCH_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
exec dotnet "$folder/OnlineAlign.Silo.dll" --role "$role"
