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

# AWS-KMS-compatible server for the libs/crypt AWS KMS tests: local-kms
# (github.com/nsmithuk/local-kms, pinned in scripts/localkms/go.mod) served
# by our launcher, which listens on a loopback address only (the upstream
# binary binds every interface).
lk_stamp="$bin/.tistream-localkms@$(sha256sum "$root/scripts/localkms/go.sum" "$root/scripts/localkms/main.go" | sha256sum | cut -c1-16)"
if [[ ! -x "$bin/tistream-localkms" || ! -f "$lk_stamp" ]]; then
  echo "install-tools: building tistream-localkms (local-kms from the Go module proxy)"
  start=$(date +%s)
  (cd "$root/scripts/localkms" && GOWORK=off go build -o "$bin/tistream-localkms" .)
  rm -f "$bin/.tistream-localkms@"*
  touch "$lk_stamp"
  echo "install-tools: tistream-localkms built in $(( $(date +%s) - start ))s"
fi
