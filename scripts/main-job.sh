#!/usr/bin/env bash
# The main job: install every well-behaved example plugin into a fresh data dir and dispatch
# `analyze` over the 146 stories: each plugin streams them through its own warm, confined
# workers, every call is recorded in the audit store, and the summary report ends the run.
#
# Usage: scripts/main-job.sh            (after `cargo build --release --workspace`)
# Environment: TARGET (default target/release), STORIES (default the shared stories file),
# PLUGIN_HOST_DATA_DIR (default a fresh temporary directory, removed at the end).
# Exits 1 if any call did not end `ok`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${TARGET:-target/release}
stories=${STORIES:-../shared/data/aesop-for-children.jsonl}
host="$target/plugin-host"
if [[ ! -x $host ]]; then
    echo "main-job: $host not found: run \`cargo build --release --workspace\` first" >&2
    exit 2
fi
if [[ -z ${PLUGIN_HOST_DATA_DIR:-} ]]; then
    PLUGIN_HOST_DATA_DIR=$(mktemp -d)
    trap 'rm -rf "$PLUGIN_HOST_DATA_DIR"' EXIT
fi
export PLUGIN_HOST_DATA_DIR

# The examples that export `analyze` and ask for nothing the default policy refuses.
for plugin in word_stats story_sanitizer story_archive story_hooks_plugin threads_ok \
    lifecycle_probe link_checker feed_fetcher; do
    "$host" install "$target/lib$plugin.so"
done
status=0
"$host" dispatch analyze --jsonl --input "$stories" || status=$?
echo
"$host" report | head -n 1
"$host" list
exit "$status"
