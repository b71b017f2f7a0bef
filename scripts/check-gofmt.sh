#!/usr/bin/env bash
# Fails when a tracked or new Go file is not gofmt-formatted.
set -euo pipefail
files=$(git ls-files --cached --others --exclude-standard -- '*.go')
[[ -z "$files" ]] && exit 0
bad=$(echo "$files" | xargs gofmt -l)
if [[ -n "$bad" ]]; then
  echo "check-gofmt: not formatted (run gofmt -w):" >&2
  echo "$bad" >&2
  exit 1
fi
