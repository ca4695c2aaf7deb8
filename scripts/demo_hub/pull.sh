#!/bin/sh
# Pulls NAME from the real hub; when the network is unreachable, says so and pulls the bundled demo
# model instead. Prints the local path on stdout, like `tlhub pull`.
#   scripts/demo_hub/pull.sh [NAME] [DEMO_NAME]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-mobilenet_v2_035_96}
demo=${2:-demo:tiny_cnn}
tlhub=${TLHUB:-tlhub}
if ! command -v "$tlhub" >/dev/null 2>&1; then tlhub="$here/../../.build/debug/tlhub"; fi
err=$(mktemp)
trap 'rm -f "$err"' EXIT
if TLHUB_CONNECT_TIMEOUT=${TLHUB_CONNECT_TIMEOUT:-5} TLHUB_RETRIES=${TLHUB_RETRIES:-1} "$tlhub" pull "$name" 2>"$err"; then
    cat "$err" >&2
    exit 0
fi
reason=$(tail -n 1 "$err")
# Only network failures fall back to the demo hub; a typo in NAME is reported as it is.
if ! printf '%s' "$reason" | grep -Eq 'cannot resolve the host|download of .* failed|timed out|HTTP 5[0-9][0-9]|HTTP 403'; then
    echo "$reason" >&2
    exit 1
fi
echo "real hub unreachable ($(printf '%s' "$reason" | sed 's/^Error: //')); using the bundled demo hub in $here" >&2
exec "$tlhub" pull --manifests "$here" --mirror "file://$here" "$demo"
