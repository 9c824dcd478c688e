#!/bin/bash
# Mutation testing (mutmut 3, the dev extra) of ONE core module with the tests that cover it.
# Not part of the CI run: a module takes minutes to hours of CPU. Results: TESTING.md.
#
#   bash scripts/mutation.sh MODULE [MAX_CHILDREN]      e.g.  bash scripts/mutation.sh media/mask 2
#   bash scripts/mutation.sh --list                     the modules and their test selections
#   bash scripts/mutation.sh build/resume 2             build/runner.py, only its resume functions
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
    evaluation/metrics) echo "tests/test_metrics.py tests/test_kills_metrics.py tests/test_kills_metrics_edges.py"\
                             "--deselect tests/test_metrics.py::test_counts_equal_the_per_threshold_loop[shape4]"\
                             "$(_props metrics_equal perfect_and_inverted invariant_to_frame_order)" ;;
    plan) echo "tests/test_plan.py tests/test_properties.py::test_plan_splits_are_disjoint_and_permutation_invariant"\
               "tests/test_properties.py::test_plan_balances_categories_in_test_and_train tests/test_kills_plan.py tests/test_sources_per_row_list.py"\
               "$(_kills unbalanced_quotas plan_from_rows plan_rows_carry every_seeded unbalanced_plan units_skip)" ;;
    sources/avs_synthetic) echo "tests/test_sources_avs_synthetic.py tests/test_kills_avs_synthetic.py tests/test_mutation_kills.py tests/test_properties.py" ;;
    sources/lvis) echo "tests/test_sources_lvis.py tests/test_kills_lvis.py" ;;
    sources/openimages) echo "tests/test_sources_openimages.py tests/test_kills_openimages.py" ;;
    sources/vggsound) echo "tests/test_sources_vggsound.py tests/test_kills_vggsound.py" ;;
    sources/avsbench) echo "tests/test_avsbench.py tests/test_kills_avsbench.py" ;;
    sources/avs_v3) echo "tests/test_kills_avs_v3.py tests/test_bench.py::test_shipped_avs_v3_splits_are_the_gavs_files" ;;
    sources/vggss|sources/flickr_soundnet) echo "tests/test_kills_localization_sources.py" ;;
    sources/records) echo "tests/test_kills_records.py" ;;
    sources/_files) echo "tests/test_kills_files.py" ;;
    media/mask) echo "tests/test_media.py tests/test_properties.py tests/test_mutation_kills.py" ;;
    media/image) echo "tests/test_media.py tests/test_kills_media.py" ;;
    media/audio) echo "tests/test_media.py tests/test_kills_media.py tests/test_kills_media_audio.py" ;;
    media/mix) echo "tests/test_kills_media.py" ;;
    media/video) echo "tests/test_kills_media.py tests/test_kills_media_video.py" ;;
    media/checks) echo "tests/test_kills_media.py tests/test_build_checks.py::test_window_rejects_short_and_silent_and_moves_off_silence"\
                       "tests/test_build_checks.py::test_rle_length_agrees_with_pycocotools" ;;
    shards/writer) echo "tests/test_kills_shards.py $(_kills 100_rows_per_row_group)"\
                        "$(_ids tests/test_shards.py writer_is_byte failing_row bad_row refuses_to_overwrite pool_shard)" ;;
    shards/verify) echo "tests/test_kills_verify.py $(_kills verify_reports) $(_ids tests/test_shards.py verify)" ;;
    shards/record) echo "tests/test_record.py tests/test_kills_shards.py" ;;
    build/runner|build/resume) echo "tests/test_kills_resume.py" ;;
    build/rows) echo "tests/test_build.py tests/test_mutation_kills.py" ;;
    modeling/adapters|modeling/sama_avs) echo "tests/test_kills_models.py tests/test_official_sama_avs.py::test_forward_loss_and_gradients_match_the_official_code tests/test_official_sama_avs.py::test_dense_pe_is_random_and_no_mask_embed_trains_in_the_official_recipe" ;;
    modeling/gavs) echo "tests/test_gavs.py tests/test_kills_gavs.py" ;;
    modeling/vggish) echo "tests/test_vggish.py tests/test_official_audio.py tests/test_kills_vggish.py" ;;
    hub) echo "tests/test_hub.py tests/test_kills_hub.py" ;;
    *) return 1 ;;
  esac
}

if [[ ${1:-} == "--list" ]]; then
  for m in evaluation/metrics plan sources/avs_synthetic sources/lvis sources/openimages \
           sources/vggsound sources/avsbench sources/avs_v3 sources/vggss sources/flickr_soundnet \
           sources/records sources/_files media/mask \
           media/image media/audio media/mix media/video media/checks shards/writer shards/verify shards/record \
           build/runner build/resume build/rows \
           modeling/sama_avs modeling/adapters modeling/gavs modeling/vggish hub; do
    printf '%-22s %s\n' "$m" "$(selection "$m")"
  done
  exit 0
fi
mod=${1:?usage: bash scripts/mutation.sh MODULE [MAX_CHILDREN] (see --list)}
if [[ $mod == build/resume ]]; then  # the resume logic of build/runner.py: these functions only
  r=avsynth.build.runner
  MUTANTS=${MUTANTS:-"$r.x_check_out_dir__mutmut_* $r.x__only_unplanned_state__mutmut_* $r.x__existing__mutmut_* $r.x_run_plan__mutmut_* $r.x_run_shard__mutmut_* $r.x_regenerate_digest__mutmut_* $r.x__record_name__mutmut_* $r.x__clean_temp_files__mutmut_*"}
  label=build/resume mod=build/runner
fi
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
# one intra-op thread: mutmut forks its children after the stats run has started torch's OpenMP
# pool, and a forked child that uses that pool can hang (seen as mutmut "timeouts")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
cd "$work"
echo "mutating avsynth/$mod.py in $work with: $tests" >&2
names=()
# MUTANTS="glob ...": mutate only the functions whose mutant names match (mutmut's fnmatch globs,
# e.g. "avsynth.build.runner.x_check_out_dir__mutmut_*"); the counts then cover those mutants only.
read -ra globs <<< "${MUTANTS:-}"
if [[ -n ${RETEST_SURVIVORS:-} && -d mutants ]]; then  # after new tests: re-run only the survivors
  mapfile -t names < <(mutmut results 2>/dev/null | grep -v ": killed$" | sed 's/^ *//; s/:.*//' |
    python -c 'import fnmatch,sys; g=sys.argv[1:]; [print(l.strip()) for l in sys.stdin if not g or any(fnmatch.fnmatch(l.strip(), p) for p in g)]' "${globs[@]}")
  [[ ${#names[@]} -gt 0 ]] || names=("${globs[@]}")
else
  names=("${globs[@]}")
fi
mutmut run --max-children "$children" "${names[@]}" >&2 || true
mutmut export-cicd-stats >&2
if [[ ${#globs[@]} -gt 0 ]]; then  # counts over the selected mutants only
  mutmut results --all true 2>/dev/null | python -c '
import collections, fnmatch, json, sys
mod, globs = sys.argv[1], sys.argv[2:]
c = collections.Counter()
for line in sys.stdin:
    name, _, status = line.strip().rpartition(": ")
    if any(fnmatch.fnmatch(name, g) for g in globs):
        c[status] += 1
c = {k.replace(" ", "_"): v for k, v in c.items()}
total = sum(c.values())
score = (c.get("killed", 0) + c.get("timeout", 0)) / total if total else 0.0
print(json.dumps({"module": mod, "mutants": " ".join(globs), **{k: c.get(k, 0) for k in
      ("killed", "survived", "no_tests", "timeout", "suspicious")}, "total": total, "score": round(score, 4)}))
' "${label:-$mod}" "${globs[@]}"
  mutmut results 2>/dev/null | grep -v ": killed$" | python -c 'import fnmatch,sys; g=sys.argv[1:]; [print(l.rstrip()) for l in sys.stdin if any(fnmatch.fnmatch(l.strip().rpartition(": ")[0], p) for p in g)]' "${globs[@]}" >&2 || true
  exit 0
fi
python - "$mod" <<'PY'
import json, sys
s = json.load(open("mutants/mutmut-cicd-stats.json"))
tested = s["total"] - s.get("skipped", 0)
score = (s["killed"] + s.get("timeout", 0)) / tested if tested else 0.0
print(json.dumps({"module": sys.argv[1], **{k: s.get(k, 0) for k in
      ("killed", "survived", "no_tests", "timeout", "suspicious", "total")}, "score": round(score, 4)}))
PY
mutmut results 2>/dev/null | grep -v ": killed$" >&2 || true
