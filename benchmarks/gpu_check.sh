#!/usr/bin/env bash
# Device check for auditor: the GPU path end to end, and bench_audit at 1M rows on CUDA.
# On a GPU machine whose Python lacks auditor's dependencies, put their wheels in .whl/ (git-ignored
# locally) first; see benchmarks/README.md, "On a GPU".
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 9
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 8
export PATH=/tmp/site/bin:$PATH
cd /tmp   # not the repo root: import the installed auditor and auditor_plugins
REPO=$OLDPWD
echo "== machine"; uname -r; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 - <<'PY'
from auditor.contain.supervisor import available
print("confinement:", available())
PY
run() { echo "== $*"; /usr/bin/time -f "wall %e s, peak %M KiB" python3 -m auditor "$@"; echo "exit $?"; }
D=$REPO/auditor/demo
for dev in cuda cpu; do
  run $D/model.pt --data $D/test.csv.gz --train-data $D/train.csv.gz --history $D/history.csv \
      --out $OUT/demo_$dev --format json,md --device $dev -q \
  || true
  if [ ! -f $OUT/demo_$dev/report.json ]; then
    run $D/model.pt --data $D/test.csv.gz --train-data $D/train.csv.gz --history $D/history.csv \
        --out $OUT/demo_$dev --format json,md --device $dev -q --trust-model
  fi
done
python3 - <<PY
import json, math
a = json.load(open("$OUT/demo_cuda/report.json")); b = json.load(open("$OUT/demo_cpu/report.json"))
print("devices:", a["run"].get("device"), b["run"].get("device"), "| confinement:", a["run"]["confinement"].get("summary","")[:160])
worst = []
for name, ra in a["audits"].items():
    rb = b["audits"][name]
    print(f"{name:12s} cuda {ra['status']:12s} cpu {rb['status']}")
    for k, m in ra["metrics"].items():
        x, y = m.get("value"), rb["metrics"].get(k, {}).get("value")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x != y:
            worst.append((abs(x - y) / max(abs(y), 1e-12), f"{name}.{k}", x, y))
worst.sort(reverse=True)
print("metrics differing cuda vs cpu:", len(worst)); [print("  ", w) for w in worst[:12]]
print("timings cuda:", json.dumps(a["run"].get("timings", {}))[:600])
print("timings cpu :", json.dumps(b["run"].get("timings", {}))[:600])
PY
echo "== bench_audit 1M rows, cuda"
timeout 300 python3 $REPO/benchmarks/bench_audit.py --sizes 1000000 --repeats 3 --device cuda 2>&1 | tail -25
