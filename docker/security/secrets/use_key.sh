#!/bin/sh
# Stands in for a service that needs an API key: says where its key came from and how long
# it is, never the key itself. Preferred: a file (a mounted secret); else the API_KEY variable.
set -eu
file="${API_KEY_FILE:-/run/secrets/api_key}"
if [ -r "$file" ]; then
  key="$(cat "$file")"; source="file $file"
elif [ -n "${API_KEY:-}" ]; then
  key="$API_KEY"; source="environment variable API_KEY"
else
  echo "no API key: mount one at $file (or set API_KEY)" >&2
  exit 2
fi
echo "API key from $source: ${#key} characters"
