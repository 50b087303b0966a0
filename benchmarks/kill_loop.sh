#!/usr/bin/env bash
# kill -9 `ganprov embed` N times, each time once it has flushed more rows, and rerun it at once; then let it
# finish and compare with an uninterrupted embed of the same images.
#   bash benchmarks/kill_loop.sh DATA TRAINED_RUN WORK [N=20]
# DATA: enough images that N kills happen before the end (at 32 px, about 2,000 on 2 cores).
set -uo pipefail
DATA=$1 TRAINED=$2 WORK=$3 N=${4:-20}
G=${GANPROV:-ganprov} PY=${PY:-python}
files_done() { HDF5_USE_FILE_LOCKING=FALSE $PY -c "import h5py; f = h5py.File('$WORK/k/embeddings.h5.partial', 'r'); print(sum(int(f[g].attrs['files_done']) for g in f))" 2>/dev/null || echo 0; }
rm -rf "$WORK/k" "$WORK/ref" && mkdir -p "$WORK/k" "$WORK/ref"
for run in k ref; do cp "$TRAINED/config.toml" "$TRAINED/checkpoint.pt" "$WORK/$run/"; done
$G embed --data "$DATA" --run "$WORK/ref" --batch-size 4 >/dev/null 2>&1
before=0
for i in $(seq 1 "$N"); do
  $G embed --data "$DATA" --run "$WORK/k" --batch-size 4 > "$WORK/log.$i" 2>&1 &
  pid=$!
  while kill -0 $pid 2>/dev/null && [ "$(files_done)" -le "$before" ]; do sleep 0.1; done
  sleep 0.$((RANDOM % 4))
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  now=$(files_done)
  echo "kill $i: $now files done (was $before) $(tr '\r' '\n' < "$WORK/log.$i" | grep -i 'damaged\|in use\|error\|Traceback' | head -1)"
  before=$now
done
$G embed --data "$DATA" --run "$WORK/k" --batch-size 4 2>&1 | tr '\r' '\n' | grep -v "^embed "
$PY - "$WORK" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(f"{sys.argv[1]}/{run}/embeddings.h5", "r") for run in ("k", "ref"))
print("equal to the uninterrupted file:", all(np.array_equal(a[g][d][:], b[g][d][:]) for g in b for d in b[g]))
PY
