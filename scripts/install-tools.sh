#!/usr/bin/env bash
# Builds every tool the build and the tests need from the Go module proxy, by
# pinned version, into .tools/bin. Prebuilt binaries are never downloaded.
# Re-running is cheap: a tool whose pinned version is already built is skipped.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"

# name|module path of the main package|version
tools=(
  "buf|github.com/bufbuild/buf/cmd/buf|v1.75.0"
  "protoc-gen-go|google.golang.org/protobuf/cmd/protoc-gen-go|v1.36.12"
  "protoc-gen-go-grpc|google.golang.org/grpc/cmd/protoc-gen-go-grpc|v1.6.2"
  # S3-compatible server for the object-store contract tests (POSIX backend).
  "versitygw|github.com/versity/versitygw/cmd/versitygw|v1.8.0"
)

for t in "${tools[@]}"; do
  IFS='|' read -r name pkg version <<<"$t"
  stamp="$bin/.$name@$version"
  if [[ -x "$bin/$name" && -f "$stamp" ]]; then
    continue
  fi
  echo "install-tools: building $name $version (from the Go module proxy)"
  start=$(date +%s)
  GOWORK=off GOBIN="$bin" go install "$pkg@$version"
  rm -f "$bin/.$name@"*
  touch "$stamp"
  echo "install-tools: $name built in $(( $(date +%s) - start ))s"
done
