#!/usr/bin/env bash
# The paper's study on real photos (issue 25): the rewrite against local and global fine-tuning and
# last-layer retraining, on a real ImageNet classifier over ../shared/data/imagenet-sample, with
# concepts from both shared segmenters (things from PASCAL, stuff from ADE20K).
# 12 (concept, style) pairs: six concepts of stuff the discovery showed the models lean on
# (mountain, sea, field, earth, grass, sky) x two styles (snowy_ground, graffiti). imagenet-sample
# has ONE photo per class, so n_train = 1 and each pair has one case: the target is the class of the
# photo with the most of the concept while the concept covers at most 60% of it (the object stays
# visible), and every other photo with the concept is test data of "other classes" (30% of it for
# validation). There is no target-class test image: those two of the paper's four numbers need
# more photos per class (the ImageNet validation set's 50).
# Every method is chosen per case on validation under the 0.25-point clean-drop budget, over a
# small grid (GRID below: 2 settings each). The 1000 photos are split in two so that no method
# learns from its clean test set: the even rows are the reference images (the rewrite's statistics
# and preserve term, retrain-last's anchors: 375; the guard: 125), the odd rows the clean set (500,
# so the budget allows one photo to change). With QUEUE=1 the same study
# runs again on a BullMQ queue with two `ruledit worker` processes (a redis-server on a free port)
# into a second results file.
# CONCEPTS="sea field" restricts the study to some of the six concepts.
# Usage: bash bench/real-benchmark.sh [MODEL_DIR] [WORKDIR]   (QUEUE=1 to add the queue run)
set -euo pipefail
cd "$(dirname "$0")/.."
S=$(cd ../shared && pwd)
M=${1:-$S/models/mobilenetv2-imagenet}
W=${2:-$(mktemp -d -t ruledit-real-bench-XXXX)}
R="node bin/ruledit.js"
D=$S/data/imagenet-sample
mkdir -p "$W"
node -e '
  const fs = require("fs");
  const [dir, out] = process.argv.slice(1);
  const rows = fs.readFileSync(dir + "/labels.csv", "utf8").trim().split("\n").slice(1);
  for (const [name, parity] of [["reference", 0], ["clean", 1]])
    fs.writeFileSync(`${out}/${name}.csv`, "file,class\n" + rows.filter((_, i) => i % 2 === parity)
      .map((r) => { const [f, c] = r.split(","); return `${dir}/${f},${c}`; }).join("\n") + "\n");
' "$D" "$W"
GRID=$W/grid.json
cat >"$GRID" <<'EOF'
{
  "rewrite": [{}, { "rank": 2 }],
  "finetune-local": [{ "lr": 1e-3 }, { "lr": 1e-4 }],
  "finetune-global": [{ "lr": 1e-4 }, { "lr": 1e-5 }],
  "retrain-last": [{ "lr": 1e-3 }, { "lr": 1e-4 }]
}
EOF
index=$($R concepts "$D" --segment "$S/models/deeplabv3-ade20k/model.onnx" \
  --segment "$S/models/deeplabv3-pascal/model.onnx" --json |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).index))')
sets=()
for concept in ${CONCEPTS:-mountain sea field earth grass sky}; do
  target=$(node -e '
    const index = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const c = process.argv[2];
    const best = index.images
      .filter((i) => (i.areas[c] ?? 0) <= 0.6 && i.label !== undefined)
      .sort((a, b) => (b.areas[c] ?? 0) - (a.areas[c] ?? 0))[0];
    console.log(best.label);' "$index" "$concept")
  for style in snowy_ground graffiti; do
    f="$W/$concept-$style.json"
    [ -f "$f" ] || $R testset "$index" --concept "$concept" --style "$S/data/styles/$style" \
      --n-train 1 --target "$target" --labels "$M/labels.txt" --out "$f" >/dev/null
    sets+=("$f")
  done
done
common=(--testsets "${sets[@]}" --grid "$GRID" --stats-data "$W/reference.csv" --clean "$W/clean.csv")
name=$(basename "$M")
time $R benchmark "$M/model.onnx" "${common[@]}" --results "$W/$name.jsonl" --report "$W/$name-report" --force
if [ "${QUEUE:-0}" = 1 ]; then
  port=$(node -e 'const s = require("net").createServer().listen(0, () => { console.log(s.address().port); s.close(); })')
  redis-server --port "$port" --save '' --appendonly no >"$W/redis.log" 2>&1 &
  redis=$!
  url="redis://127.0.0.1:$port/0"
  sleep 1
  workers=()
  for k in 1 2; do
    $R worker --queue "$url" --threads 1 >"$W/worker-$k.log" 2>&1 &
    workers+=($!)
  done
  trap 'kill "${workers[@]}" "$redis" 2>/dev/null || true' EXIT
  time $R benchmark "$M/model.onnx" "${common[@]}" --queue "$url" --results "$W/$name-queue.jsonl" --json >"$W/$name-queue.json"
fi
echo "results: $W/$name.jsonl, report: $W/$name-report/report.html"
