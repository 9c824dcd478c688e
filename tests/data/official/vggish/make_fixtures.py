"""Record the official AVSBench audio preprocessing and the torchvggish network on fixed inputs.

Documentation only (not run by the tests; contains no official code): it imports the official
modules from the AVSBench snapshot given on the command line and writes

* ``s4_logmel_official.npy`` — ``vggish_input.wavfile_to_examples`` of the first 5 s of
  ``../shared/data/real/vggsound/FwVYUHKoLtQ_000034.wav`` (written as 16-bit PCM), [5, 1, 96, 64];
* ``s4_logmel_official.pkl`` — the same tensor pickled as ``preprocess_s4.py``'s
  ``extract_one_log_mel`` stores it (the ``audio_log_mel/*.pkl`` files of the object release);
* ``vggish_net_in.npy`` / ``vggish_net_out.npy`` — the official ``torchvggish`` ``VGG`` network's
  output on two of those examples, its weights filled by the rule of ``fill_weights`` below.

Usage: python make_fixtures.py AVSBENCH_SNAPSHOT_DIR SHARED_DIR OUT_DIR
"""

import pickle
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

snapshot, shared, out = (Path(a) for a in sys.argv[1:4])
sys.path.insert(0, str(snapshot / "avs_scripts" / "avs_s4"))
from torchvggish import vggish, vggish_input  # noqa: E402  (the official modules)


def fill_weights(module: torch.nn.Module) -> None:
    """Every parameter, in state-dict key order: ``randn(shape, generator seed 0) * 0.02``
    (biases too): a rule any implementation with the same key layout can repeat."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, p in sorted(module.state_dict().items()):
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)


wave, sr = sf.read(str(shared / "data/real/vggsound/FwVYUHKoLtQ_000034.wav"), dtype="int16")
cut = out / "clip5s.wav"
sf.write(str(cut), wave[: 5 * sr], sr, subtype="PCM_16")
examples = vggish_input.wavfile_to_examples(str(cut))  # [5, 1, 96, 64], float32
cut.unlink()
np.save(out / "s4_logmel_official.npy", examples.detach().numpy())
with open(out / "s4_logmel_official.pkl", "wb") as fh:
    pickle.dump(examples, fh)  # exactly as extract_one_log_mel does

net = vggish.VGG(vggish.make_layers()).eval()
fill_weights(net)
x = examples[1:3].detach()
with torch.no_grad():
    y = net(x)
np.save(out / "vggish_net_in.npy", x.numpy())
np.save(out / "vggish_net_out.npy", y.numpy())
print(examples.shape, y.shape, float(y.abs().max()))
