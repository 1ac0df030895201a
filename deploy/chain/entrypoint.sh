#!/bin/sh
# The chain of docker-compose.yml: anvil whose saved state survives `docker kill`.
#
# anvil saves its state (--dump-state, every --state-interval seconds and on a clean exit) by
# truncating the file and writing it again. A kill inside that window leaves a cut file, which
# anvil then refuses to load ("failed to parse json file"): the chain would never start again.
# So anvil saves into a FIFO instead; the saver below reads each save whole, keeps it only if
# anvil can load it, and renames it over anvil.json (rename is atomic). A kill mid-save loses
# that save, never the one before.
#
# Usage: entrypoint.sh [anvil options...]   (the state options are added here)
set -eu
cd "${CHAIN_STATE_DIR:-/state}"
STATE=anvil.json
[ -p .save ] || { rm -f .save; mkfifo .save; }

# `anvil --state FILE --version` parses FILE and exits: 0 if anvil can load it, 2 if not.
loadable() { anvil --state "$1" --version >/dev/null 2>&1; }

save() {
  while :; do
    cat .save > .save.json || continue   # one save: anvil opens the FIFO, writes, closes
    if loadable .save.json; then
      mv .save.json "$STATE"
    elif [ -s .save.json ]; then
      echo "chain: discarded a save cut short; $STATE keeps the previous one" >&2
    fi
  done
}

if [ -e "$STATE" ] && ! loadable "$STATE"; then
  echo "chain: anvil cannot load $STATE; move it away to start a new chain" >&2
  exit 1
fi
save &
saver=$!
load=
[ -e "$STATE" ] && load="--load-state $STATE"
# shellcheck disable=SC2086  # $load is zero or two words
anvil "$@" $load --dump-state .save --state-interval "${CHAIN_STATE_INTERVAL:-5}" \
  --preserve-historical-states &
chain=$!
trap 'kill -TERM "$chain" 2>/dev/null' TERM INT
while :; do                 # a trapped signal ends `wait` early: wait again for anvil's
  rc=0                      # final save and exit
  wait "$chain" || rc=$?
  kill -0 "$chain" 2>/dev/null || break
done
: > .save                   # opens once the saver has stored that save; an empty write it ignores
kill "$saver" 2>/dev/null || true
exit "$rc"
