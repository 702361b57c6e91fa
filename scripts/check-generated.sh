#!/usr/bin/env bash
# Fails, showing the diff, when the committed generated API code (api/gen/smppgw/v1, api/openapi)
# differs from what scripts/gen-proto.sh produces from proto/ now: regenerates into a temp dir and
# compares the generated files only (the hand-written Go files beside them are left out).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$root/scripts/gen-proto.sh" "$tmp/fresh"

# generated DIR: the generated files under DIR, one relative path a line.
generated() {
  (cd "$1" && find api/gen api/openapi -type f \
    \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) 2>/dev/null | LC_ALL=C sort)
}
mkdir -p "$tmp/committed"
generated "$root" | while read -r f; do
  mkdir -p "$tmp/committed/$(dirname "$f")"
  cp "$f" "$tmp/committed/$f"
done
mkdir -p "$tmp/fresh/api"
if [ -z "$(generated "$tmp/fresh")" ]; then
  echo "check-generated: gen-proto.sh produced nothing" >&2
  exit 1
fi
if ! diff -u <(generated "$root") <(generated "$tmp/fresh") >"$tmp/files"; then
  sed -e '1,2d' "$tmp/files"
  echo "check-generated: generated files differ (- stale in the repo, + missing from it);" \
    "run scripts/gen-proto.sh and commit the result" >&2
  exit 1
fi
if ! diff -ruN "$tmp/committed" "$tmp/fresh" >"$tmp/diff"; then
  sed -e "s#$tmp/committed/##g" -e "s#$tmp/fresh/##g" "$tmp/diff" | head -n 200
  echo "check-generated: generated code is out of date; run scripts/gen-proto.sh and commit the result" >&2
  exit 1
fi
echo "check-generated: api/gen and api/openapi match proto/ ($(generated "$tmp/fresh" | wc -l) files)"
