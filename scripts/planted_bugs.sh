#!/bin/bash
# The seven bugs of issue 17, planted one at a time: each must make tests/test_mutation_kills.py fail.
# Every file is restored after its run. Usage: bash scripts/planted_bugs.sh
cd "$(dirname "$0")/.."; export PYTHONPATH="$PWD"; bak=$(mktemp)
run() { # file old new test
  f=$1; cp "$f" "$bak"
  python - "$f" "$2" "$3" <<'P'
import sys; p,o,n=sys.argv[1:]; s=open(p).read(); assert s.count(o)==1,(p,o); open(p,'w').write(s.replace(o,n))
P
  r=$(python -m pytest "tests/test_mutation_kills.py" -q -p no:cacheprovider -k "$4" 2>&1 | tail -1)
  cp "$bak" "$f"
  echo "BROKEN $f [$2 -> $3]: $r"
}
run avsynth/sources/avs_synthetic.py 'if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS' 'if module in ("builtins", "__builtin__") and (name in _SAFE_BUILTINS or name in ("eval", "exec", "getattr", "__import__"))' unpickler
run avsynth/modeling/sama_avs.py '            if audio is not None:
                x = x + self.adapters(audio, i)
            x = self.run_block(block, x)' '            x = self.run_block(block, x)
            if audio is not None:
                x = x + self.adapters(audio, i)' sama
run avsynth/build/rows.py 'mask = masks[0] if len(masks) == 1 else union(masks)' 'mask = masks[0]' union
run avsynth/build/runner.py 'if rec.sha256 != sha256_file(orphan):' 'if False:' resume
run avsynth/shards/verify.py 'if audio_split.setdefault(aud, s.split) != s.split:' 'if False:' audio_clip
run avsynth/build/rows.py '"; ".join(licenses + [f"audio: {item.clip.license}"])' '"; ".join(licenses)' license
run avsynth/shards/schema.py 'ROW_GROUP_SIZE = 100 ' 'ROW_GROUP_SIZE = 100_000 ' row_group
