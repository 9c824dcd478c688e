"""Record the official SAMA-AVS model (jinxiang-liu/anno-free-AVS ``models/sam.py``) at tiny
dimensions with random weights: forward and training loss, and the gradients of the trained
parameters.

Documentation only (not run by the tests; no official code in it): it imports the official
modules from the snapshot given on the command line. The ``models`` / ``models.mmseg`` /
``models.mmseg.models`` package ``__init__`` files are bypassed (they import mmcv, which only
the unrelated mmseg parts need): the packages are registered with their folder as ``__path__``.

Usage: PYTHONPATH=STUBS python make_fixtures.py SAMA_SNAPSHOT_DIR OUT_DIR
(STUBS: ``easydict`` and ``resampy`` stand-ins; resampy is never called.)
"""

import importlib
import sys
import types
from pathlib import Path

import torch

snapshot, out = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(snapshot))
for name, folder in (("models", "models"), ("models.mmseg", "models/mmseg"),
                     ("models.mmseg.models", "models/mmseg/models")):
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(snapshot / folder)]
    sys.modules[name] = pkg
sys.modules["models"].register = importlib.import_module("models.models").register
from configs.vggish_config import cfg as vggish_cfg  # noqa: E402

vggish_cfg.TRAIN.FREEZE_AUDIO_EXTRACTOR = False  # random VGGish (not recorded): no weights file
official = importlib.import_module("models.sam")

ENCODER = dict(name="sam", img_size=64, mlp_ratio=4, patch_size=8, qkv_bias=True, use_rel_pos=True,
               window_size=4, out_chans=32, prompt_embed_dim=32, embed_dim=32, depth=4, num_heads=2,
               global_attn_indexes=[1, 3])
torch.manual_seed(0)
model = official.SAM(inp_size=64, encoder_mode=ENCODER, loss="iou").eval()
model.device = torch.device("cpu")
with torch.no_grad():  # zero-initialised tensors (rel. positions, biases) get values too
    for _, p in model.named_parameters():
        if not p.any():
            p.copy_(torch.randn(p.shape) * 0.02)
    for _, t in model.state_dict().items():  # values on the float16 grid: stored in half, exactly
        t.copy_(t.half().float())

# the official layout; VGGish (audio_encoder.*, full size, random here) is left out: its network
# has its own fixture (tests/data/official/vggish)
state = {k: v.half() for k, v in model.state_dict().items() if not k.startswith("audio_encoder.")}
images = torch.randn(2, 3, 64, 64)
audio = torch.relu(torch.randn(2, 128))  # VGGish embeddings (its last layer is a ReLU)
gt = torch.zeros(2, 1, 64, 64)
gt[0, 0, 10:40, 20:50] = 1
gt[1, 0, 30:60, 5:25] = 1

# what set_input leaves after the (frozen) VGGish: the images, the embeddings, the masks
model.input, model.spec, model.gt_mask = images, audio, gt
model.forward()  # sets pred_mask = postprocess_masks(low_res) at 64²
loss = model.criterionBCE(model.pred_mask, gt) + official._iou_loss(model.pred_mask, gt)
loss.backward()
trained = ["image_encoder.prompt_generator.shared_mlp.weight",
           "image_encoder.prompt_generator.lightweight_mlp_2.0.bias",
           "mask_decoder.output_upscaling.0.weight", "no_mask_embed.weight"]
grads = {k: p.grad.clone() for k, p in model.named_parameters() if k in trained}
with torch.no_grad():
    low_res, _ = model.mask_decoder(image_embeddings=model.features, image_pe=model.get_dense_pe(),
                                    sparse_prompt_embeddings=torch.empty(1, 0, 32),
                                    dense_prompt_embeddings=model.no_mask_embed.weight.reshape(1, -1, 1, 1)
                                    .expand(1, -1, 8, 8), multimask_output=False)
torch.save(state, out / "sama_avs_official_state.pt")
torch.save({"images": images, "audio": audio, "gt": gt, "low_res_logits": low_res,
            "pred_mask": model.pred_mask.detach(), "loss": loss.detach(), "grads": grads},
           out / "sama_avs_io.pt")
print(len(state), float(loss.detach()), {k: float(v.abs().max()) for k, v in grads.items()})
