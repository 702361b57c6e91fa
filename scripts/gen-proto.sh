#!/usr/bin/env bash
# Regenerates the API code from proto/ with buf and local protoc plugins:
#   api/gen/smppgw/v1/*.pb.go, *_grpc.pb.go, *.pb.gw.go   (protoc-gen-go, -go-grpc, -grpc-gateway)
#   api/openapi/smppgw.swagger.json                          (protoc-gen-openapiv2, merged)
#
# Usage: scripts/gen-proto.sh [OUTPUT_ROOT]
#   OUTPUT_ROOT defaults to the repository root; scripts/check-generated.sh passes a temp dir.
#
# Tools are installed with `go install` at pinned versions into .cache/proto/tools (git-ignored) and
# reused while their version stays the same. The third-party .proto files we import are never
# committed: google/api/{annotations,http,field_behavior}.proto and google/rpc/status.proto come from
# the npm package google-proto-files (pinned, integrity-checked), and
# protoc-gen-openapiv2/options/*.proto from the grpc-gateway Go module at the version in go.mod. They
# are laid out in .cache/proto/include, the second module of buf.yaml.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out_root="${1:-$root}"
mkdir -p "$out_root"
out_root="$(cd "$out_root" && pwd)"

export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

# Pinned versions. protoc-gen-go and the grpc-gateway plugins follow go.mod so that the generated
# code always matches the runtime libraries it is compiled against.
buf_version=v1.75.0
go_grpc_version=v1.6.2
proto_files_version=6.0.1
proto_files_integrity=sha512-fbvUWVNh3rKGlVFWwlUNF7Sk1Tah0a89q02rLTXsWjbKKHGeuURAa8tl9rvu5TyWny1YiSIo5eDqF260Tai6vQ==
protobuf_version="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
gateway_version="$(go list -m -f '{{.Version}}' github.com/grpc-ecosystem/grpc-gateway/v2)"

cache="$root/.cache/proto"
bin="$cache/bin"
mkdir -p "$bin"

# install NAME VERSION PACKAGE: go install PACKAGE@VERSION into its own versioned folder, once.
install() {
  local name="$1" version="$2" pkg="$3"
  local dir="$cache/tools/$name/$version"
  if [ ! -x "$dir/$name" ]; then
    echo "gen-proto: installing $name $version" >&2
    mkdir -p "$dir"
    GOBIN="$dir" go install "$pkg@$version"
  fi
  ln -sfn "$dir/$name" "$bin/$name"
}
install buf "$buf_version" github.com/bufbuild/buf/cmd/buf
install protoc-gen-go "$protobuf_version" google.golang.org/protobuf/cmd/protoc-gen-go
install protoc-gen-go-grpc "$go_grpc_version" google.golang.org/grpc/cmd/protoc-gen-go-grpc
install protoc-gen-grpc-gateway "$gateway_version" \
  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway
install protoc-gen-openapiv2 "$gateway_version" \
  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2

# Third-party .proto files, rebuilt from the cached sources on every run so nothing stale survives.
npm_dir="$cache/npm/google-proto-files-$proto_files_version"
if [ ! -f "$npm_dir/.complete" ]; then
  echo "gen-proto: fetching google-proto-files $proto_files_version from npm" >&2
  rm -rf "$npm_dir"
  mkdir -p "$npm_dir"
  tarball="$(cd "$npm_dir" && npm pack --silent "google-proto-files@$proto_files_version" | tail -n 1)"
  got="$(node -e 'const c = require("crypto"), fs = require("fs");
    process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' \
    "$npm_dir/$tarball")"
  if [ "$got" != "$proto_files_integrity" ]; then
    echo "gen-proto: $tarball integrity $got, want $proto_files_integrity" >&2
    exit 1
  fi
  tar -xzf "$npm_dir/$tarball" -C "$npm_dir" package/google/api package/google/rpc
  touch "$npm_dir/.complete"
fi
gateway_dir="$(go mod download -json "github.com/grpc-ecosystem/grpc-gateway/v2@$gateway_version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
include="$cache/include"
rm -rf "$include"
mkdir -p "$include/google/api" "$include/google/rpc" "$include/protoc-gen-openapiv2/options"
for f in annotations http field_behavior; do
  cp "$npm_dir/package/google/api/$f.proto" "$include/google/api/"
done
cp "$npm_dir/package/google/rpc/status.proto" "$include/google/rpc/"
cp "$gateway_dir/protoc-gen-openapiv2/options/annotations.proto" \
  "$gateway_dir/protoc-gen-openapiv2/options/openapiv2.proto" "$include/protoc-gen-openapiv2/options/"
chmod -R u+w "$include"

export PATH="$bin:$PATH"
buf lint
buf format --diff --exit-code proto

# Generated files are owned by this script: remove them first so a deleted .proto leaves nothing behind
# (buf.gen.yaml's clean option would also delete the hand-written files beside them).
rm -f "$out_root"/api/gen/smppgw/v1/*.pb.go "$out_root"/api/gen/smppgw/v1/*.pb.gw.go \
  "$out_root"/api/openapi/*.swagger.json
buf generate --path proto/smppgw -o "$out_root"
