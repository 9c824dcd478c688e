#!/bin/bash
# Mutation testing (mutmut 3, the dev extra) of ONE core module with the tests that cover it.
# Not part of the CI run: a module takes minutes to hours of CPU. Results: TESTING.md.
#
#   bash scripts/mutation.sh MODULE [MAX_CHILDREN]      e.g.  bash scripts/mutation.sh media/mask 2
#   bash scripts/mutation.sh --list                     the modules and their test selections
#
# It copies the working tree (tracked and untracked, not ignored files) into a scratch folder
# ($MUTATION_WORKDIR, default a new temporary one), sets [tool.mutmut] there to mutate only
# avsynth/MODULE.py with that module's tests, runs `mutmut run`, and prints one JSON line:
# {"module", "killed", "survived", "no_tests", "timeout", "suspicious", "total", "score"} plus the
# survivors (`mutmut results`). Re-running with the same MUTATION_WORKDIR continues where it
# stopped; with RETEST_SURVIVORS=1 it re-runs only the mutants that were not killed (after new
# tests were added). The tests find ../shared through AVSYNTH_SHARED (default: the one beside the repo).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

# test ids of FILE (or tests/test_mutation_kills.py, tests/test_properties.py) whose names contain one of the words
_ids() { local f=$1 w; shift; for w in "$@"; do grep -o "^def test_[a-z0-9_]*${w}[a-z0-9_]*" "$repo/$f" | sed "s|^def |$f::|"; done | sort -u | tr '\n' ' '; }
_kills() { _ids tests/test_mutation_kills.py "$@"; }
_props() { _ids tests/test_properties.py "$@"; }
# the hub functions that issue 17 calls "hub redaction" (token resolution, redaction, log filter)
HUB_REDACTION="avsynth.hub.x_resolve_token* avsynth.hub.x_redact* avsynth.hub.xǁ_RedactFilterǁ*"

selection() {
  case $1 in
    evaluation/metrics) echo "tests/test_metrics.py tests/test_kills_metrics.py"\
                             "--deselect tests/test_metrics.py::test_counts_equal_the_per_threshold_loop[shape4]"\
                             "$(_props metrics_equal perfect_and_inverted invariant_to_frame_order)" ;;
    plan) echo "tests/test_plan.py tests/test_properties.py::test_plan_splits_are_disjoint_and_permutation_invariant"\
               "tests/test_properties.py::test_plan_balances_categories_in_test_and_train tests/test_kills_plan.py"\
               "$(_kills unbalanced_quotas plan_from_rows plan_rows_carry every_seeded unbalanced_plan units_skip)" ;;
    sources/avs_synthetic) echo "tests/test_sources_avs_synthetic.py tests/test_mutation_kills.py tests/test_properties.py" ;;
    sources/lvis) echo "tests/test_sources_lvis.py" ;;
    sources/openimages) echo "tests/test_sources_openimages.py" ;;
    sources/vggsound) echo "tests/test_sources_vggsound.py" ;;
    sources/avsbench) echo "tests/test_avsbench.py" ;;
    sources/avs_v3) echo "tests/test_bench.py::test_shipped_avs_v3_splits_are_the_gavs_files tests/test_bench.py::test_avs_v3_selection_on_a_tree_from_the_real_metadata" ;;
    sources/records|sources/_files) echo "tests/test_sources_lvis.py tests/test_sources_openimages.py tests/test_sources_vggsound.py tests/test_sources_avs_synthetic.py" ;;
    media/mask) echo "tests/test_media.py tests/test_properties.py tests/test_mutation_kills.py" ;;
    media/image|media/audio) echo "tests/test_media.py tests/test_kills_media.py" ;;
    media/mix|media/video) echo "tests/test_kills_media.py" ;;
    media/checks) echo "tests/test_kills_media.py tests/test_build_checks.py::test_window_rejects_short_and_silent_and_moves_off_silence"\
                       "tests/test_build_checks.py::test_rle_length_agrees_with_pycocotools" ;;
    shards/writer) echo "tests/test_kills_shards.py $(_kills 100_rows_per_row_group)"\
                        "$(_ids tests/test_shards.py writer_is_byte failing_row bad_row refuses_to_overwrite pool_shard)" ;;
    shards/verify) echo "tests/test_kills_verify.py $(_kills verify_reports) $(_ids tests/test_shards.py verify)" ;;
    shards/record) echo "tests/test_record.py tests/test_kills_shards.py" ;;
    build/runner) echo "tests/test_build.py tests/test_mutation_kills.py tests/test_write_failure.py" ;;
    build/rows) echo "tests/test_build.py tests/test_mutation_kills.py" ;;
    modeling/sama_avs|modeling/adapters|modeling/gavs) echo "tests/test_models.py tests/test_mutation_kills.py" ;;
    modeling/vggish) echo "tests/test_vggish.py" ;;
    hub) echo "tests/test_hub.py tests/test_kills_hub.py" ;;
    *) return 1 ;;
  esac
}

if [[ ${1:-} == "--list" ]]; then
  for m in evaluation/metrics plan sources/avs_synthetic sources/lvis sources/openimages \
           sources/vggsound sources/avsbench sources/avs_v3 sources/records sources/_files media/mask \
           media/image media/audio media/mix media/video media/checks shards/writer shards/verify shards/record build/runner build/rows \
           modeling/sama_avs modeling/adapters modeling/gavs modeling/vggish hub; do
    printf '%-22s %s\n' "$m" "$(selection "$m")"
  done
  exit 0
fi
mod=${1:?usage: bash scripts/mutation.sh MODULE [MAX_CHILDREN] (see --list)}
children=${2:-2}
tests=$(selection "$mod") || { echo "unknown module $mod (see --list)" >&2; exit 2; }
[[ $mod == hub ]] && MUTANTS=${MUTANTS:-$HUB_REDACTION}  # hub: the redaction functions only (issue 17)
[[ -f "$repo/avsynth/$mod.py" ]] || { echo "avsynth/$mod.py: no such module" >&2; exit 2; }

work=${MUTATION_WORKDIR:-$(mktemp -d -t avsynth-mutation.XXXXXX)}
mkdir -p "$work"
(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work")
python - "$work/pyproject.toml" "avsynth/$mod.py" $tests <<'PY'
import re, sys
path, target, tests = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(path, encoding="utf-8").read()
block = ("[tool.mutmut]\nsource_paths = [\"avsynth\"]\n"
         f"only_mutate = [{target!r}]\n".replace("'", '"')
         + "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]\n"
         + "pytest_add_cli_args = [\"-p\", \"no:cacheprovider\", \"-x\", \"-q\"]\n"
         + "also_copy = [\"models\", \"manifests\"]\n")
text = re.sub(r"\n\[tool\.mutmut\]\n(?:(?!\n\[).)*", "\n", text, flags=re.S)
open(path, "w", encoding="utf-8").write(text.rstrip("\n") + "\n\n" + block)
PY
export AVSYNTH_SHARED=${AVSYNTH_SHARED:-$(cd "$repo/.." && pwd)/shared}
unset PYTHONPATH
# one thread per test process: the mutants run MAX_CHILDREN at a time on a shared machine, where
# torch's own thread pool only adds contention (results do not depend on it)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
cd "$work"
echo "mutating avsynth/$mod.py in $work with: $tests" >&2
# MUTANTS="glob ...": mutate only the functions whose mutant names match (e.g. the redaction
# functions of hub: MUTANTS="avsynth.hub.x_redact* avsynth.hub.x_resolve_token*"); counts are then
# of those mutants only.
read -r -a globs <<< "${MUTANTS:-}"
names=("${globs[@]}")
if [[ -n ${RETEST_SURVIVORS:-} && -d mutants ]]; then  # after new tests: re-run only the survivors
  mapfile -t names < <(mutmut results 2>/dev/null | grep -v ": killed$" | sed 's/^ *//; s/:.*//' |
                       python -c 'import fnmatch, sys; g = sys.argv[1:]; [print(n, end="") for n in sys.stdin
                                  if not g or any(fnmatch.fnmatch(n.strip(), x) for x in g)]' "${globs[@]}")
  [[ ${#names[@]} -gt 0 ]] || names=("${globs[@]}")
fi
mutmut run --max-children "$children" "${names[@]}" >&2 || true
mutmut results --all true 2>/dev/null | python -c '
import collections, fnmatch, json, sys
mod, globs = sys.argv[1], sys.argv[2:]
status = {}
for line in sys.stdin:
    name, _, st = line.strip().rpartition(": ")
    if name and (not globs or any(fnmatch.fnmatch(name, g) for g in globs)):
        status[name] = st
c = collections.Counter(status.values())
run = len(status) - c["not checked"] - c["skipped"]
score = (c["killed"] + c["timeout"]) / run if run else 0.0
print(json.dumps({"module": mod, "killed": c["killed"], "survived": c["survived"], "no_tests": c["no tests"],
                  "timeout": c["timeout"], "suspicious": c["suspicious"], "segfault": c["segfault"],
                  "not_checked": c["not checked"],
                  "total": len(status), "score": round(score, 4)}))
for name, st in sorted(status.items()):
    if st != "killed":
        print(f"    {name}: {st}", file=sys.stderr)
' "$mod" "${globs[@]}"
