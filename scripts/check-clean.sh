#!/usr/bin/env bash
# Fails when the given paths differ from what is committed (modified or untracked).
set -euo pipefail
changes=$(git status --porcelain -- "$@")
if [[ -n "$changes" ]]; then
  echo "check-clean: regeneration changed checked-in files; run 'make generate' and commit:" >&2
  echo "$changes" >&2
  git --no-pager diff --stat -- "$@" >&2 || true
  exit 1
fi
