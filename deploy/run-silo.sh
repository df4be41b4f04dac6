#!/usr/bin/env bash
# Starts one OnlineAlign silo of a multi-machine cluster.
# Usage:
#   ONLINEALIGN_STORAGE=... \
#   ClusterTls__CertificatePath=silo.crt ClusterTls__KeyPath=silo.key ClusterTls__CaPath=ca.crt \
#   [ONLINEALIGN_API_KEY=...]  [Api__CertificatePath=api.crt Api__CertificateKeyPath=api.key] \
#     deploy/run-silo.sh <control|gpu> <this machine's address> [published silo folder]
# The silo and gateway ports listen on <address>, so they carry mutual TLS: ClusterTls__* name this silo's
# certificate and key and the CA every peer's certificate must chain to (PEM; deploy/README.md, "Certificates",
# makes them). The silo refuses to start with these ports off loopback without them, and a control silo's API
# (on <address> too) without an API key of at least 32 characters; Api__Certificate* serve that API over TLS.
set -euo pipefail
role=${1:?role: control or gpu}
address=${2:?the address other silos reach this machine on}
folder=${3:-out/silo}
: "${ONLINEALIGN_STORAGE:?set ONLINEALIGN_STORAGE to the shared Azure Storage connection string}"
case "$address" in
  127.*|localhost|::1) ;;
  *) for variable in ClusterTls__CertificatePath ClusterTls__KeyPath ClusterTls__CaPath; do
       if [ -z "${!variable:-}" ]; then
         echo "run-silo.sh: set $variable (PEM): the silo and gateway ports on $address need mutual TLS (deploy/README.md, Certificates)" >&2
         exit 2
       fi
     done ;;
esac
export Silo__ClusterId=${Silo__ClusterId:-onlinealign}
export Silo__ListenAddress=$address
if [ "$role" = control ]; then export Api__ListenAddress=${Api__ListenAddress:-$address}; fi
if [ "$role" = gpu ] && [ -z "${TORCH_LIB_DIR:-}" ] && command -v python3 >/dev/null; then
  # Use an existing PyTorch install's CUDA libtorch when there is one.
  TORCH_LIB_DIR=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))' 2>/dev/null || true)
  [ -n "$TORCH_LIB_DIR" ] && export LD_LIBRARY_PATH="$TORCH_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
exec dotnet "$folder/OnlineAlign.Silo.dll" --role "$role"
