#!/usr/bin/env bash
# How long a silo started after another was killed (-9) takes to join: the dead one must be voted out first.
# Usage: bash src/OnlineAlign.Benchmarks/silo_restart.sh [VAR=value ...]   (e.g. Membership__IAmAliveTablePublishTimeout=00:00:03)
# Needs a Release build (dotnet build -c Release) and `npm ci`. Ports 41000-41022 on loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
node_modules/.bin/azurite --location "$work/azurite" --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 \
  --blobPort 41000 --queuePort 41001 --tablePort 41002 --skipApiVersionCheck --loose --disableTelemetry > "$work/azurite.log" 2>&1 &
sleep 3
key=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==  # Azurite's public development key
export ONLINEALIGN_STORAGE="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:41000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:41001/devstoreaccount1;TableEndpoint=http://127.0.0.1:41002/devstoreaccount1;"
export Silo__ClusterId=restart Silo__Device=cpu
for var in "$@"; do export "$var"; done
silo() { # index, then wait for its "up" line and print the seconds it took
  local n=$1 start=$SECONDS
  Silo__DataFolder="$work/s$n" Silo__SiloPort=410${n}0 Silo__GatewayPort=410${n}1 Api__Port=410${n}2 \
    dotnet src/OnlineAlign.Silo/bin/Release/net10.0/OnlineAlign.Silo.dll --role all > "$work/silo$n.log" 2>&1 &
  pid=$!
  until grep -q "up: gRPC" "$work/silo$n.log"; do sleep 0.5; done
  echo "silo $n serving after $((SECONDS - start)) s"
}
silo 1; first=$pid
kill -9 "$first"
silo 2
echo "settings: ${*:-those of silos/all.json}"
