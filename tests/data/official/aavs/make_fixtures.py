"""Record the AAVS / Stepping Stones fixtures from the official code (documentation; not imported by tests).

Runs the *official* patched transformers 4.35.2 vendored in GeWu-Lab/Stepping-Stones (``avs/transformers``
for the stage-1 AAVS model, ``avss/transformers`` for the Stepping Stones stage-2 model) at tiny dimensions
with random weights, and saves the official-layout state dict (the keys of ``AdaptiveAVS.state_dict()``:
``model.*`` for the Mask2Former, ``audio_proj.*``), the inputs and the outputs. No official code is copied
here: the vendored package is imported from the checkout given on the command line; the three lines of
``AdaptiveAVS.forward`` (project the VGGish vectors with ``audio_proj``, call the Mask2Former with
``prompt_features_projected`` [and ``audio_boost_mask``]) are restated below.

    python make_fixtures.py STEPPING_STONES_CHECKOUT {avs|avss} OUT.pt
"""

import sys

checkout, variant, out = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, f"{checkout}/{variant}")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig  # noqa: E402

assert "/" + variant + "/transformers" in __import__("transformers").__file__

LABELS = 2 if variant == "avs" else 5
QUERIES = 6 if variant == "avs" else 8
FRAMES, SIZE, AUDIO_HIDDEN, HIDDEN = 3, 32, 32, 32


def tiny_config() -> Mask2FormerConfig:
    backbone = SwinConfig(image_size=SIZE, patch_size=4, embed_dim=4, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 2],
                          window_size=4, drop_path_rate=0.3, out_features=["stage1", "stage2", "stage3", "stage4"])
    id2label = {i: f"c{i}" for i in range(LABELS)}
    return Mask2FormerConfig(
        backbone_config=backbone, feature_size=HIDDEN, mask_feature_size=HIDDEN, hidden_dim=HIDDEN,
        encoder_feedforward_dim=32, dim_feedforward=32, encoder_layers=2, decoder_layers=4, num_attention_heads=4,
        num_queries=QUERIES, id2label=id2label, label2id={v: k for k, v in id2label.items()}, train_num_points=256,
        class_weight=2.0, mask_weight=5.0, dice_weight=5.0, no_object_weight=0.1, oversample_ratio=3.0,
        importance_sample_ratio=0.75, use_auxiliary_loss=True)


class Official(nn.Module):
    """Same attribute names as the official ``AdaptiveAVS`` (so the state dict has the .pth layout)."""

    def __init__(self):
        super().__init__()
        self.model = Mask2FormerForUniversalSegmentation(tiny_config())
        self.audio_proj = nn.Sequential(nn.Linear(128, AUDIO_HIDDEN), nn.ReLU(), nn.Linear(AUDIO_HIDDEN, HIDDEN))


torch.manual_seed(0)
model = Official().eval()
with torch.no_grad():  # adapters (and level / audio / silence / uncertain embeddings) large enough to matter
    for name, p in model.named_parameters():
        if "adapt" in name or name.endswith("_embed.weight"):
            p.normal_(0.0, 0.2)

g = torch.Generator().manual_seed(1)
pixel_values = torch.randn(FRAMES, 3, SIZE, SIZE, generator=g)
audio = torch.randn(FRAMES, 128, generator=g)
gt = torch.randint(0, LABELS, (FRAMES, SIZE // 8, SIZE // 8), generator=g)
gt = nn.functional.interpolate(gt[:, None].float(), size=(SIZE, SIZE), mode="nearest")[:, 0].long()
class_labels = [torch.unique(m) for m in gt]
mask_labels = [torch.stack([(m == c).float() for c in cl]) for m, cl in zip(gt, class_labels)]
inputs = dict(pixel_values=pixel_values, pixel_mask=torch.ones(FRAMES, SIZE, SIZE, dtype=torch.long),
              mask_labels=mask_labels, class_labels=class_labels)
record = {"variant": variant, "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
          "pixel_values": pixel_values, "audio": audio, "gt": gt.to(torch.uint8), "loss_seed": 1234}
if variant == "avss":
    # stage-1 masks at 224² in the official pipeline; here 28² with hard 0/1 and soft values (all three bands)
    # frame 0: just above the silence bound (0.41-0.44) over hard 0; frame 1: just below the audio
    # bound (0.56-0.59) over hard 1; frame 2: uniform noise over 0 / 1 bands
    boost = torch.rand(FRAMES, 28, 28, generator=g)
    boost[0] = 0.41 + 0.03 * boost[0]
    boost[0, 14:] = 0.0
    boost[1] = 0.56 + 0.03 * boost[1]
    boost[1, 14:] = 1.0
    boost[2, :10] = 1.0
    boost[2, 20:] = 0.0
    record["stage1_mask"] = boost
    inputs["audio_boost_mask"] = boost

inputs["prompt_features_projected"] = model.audio_proj(audio.view(1, -1, 128))
torch.manual_seed(record["loss_seed"])
with torch.no_grad():
    outputs = model.model(**inputs)
record["class_queries_logits"] = outputs.class_queries_logits
record["masks_queries_logits"] = outputs.masks_queries_logits
record["loss"] = outputs.loss
record["transformers_version"] = __import__("transformers").__version__
torch.save(record, out)
print(out, "loss", float(outputs.loss), "params", sum(p.numel() for p in model.parameters()))
