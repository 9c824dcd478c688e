"""Record the GAVS fixture by running the OFFICIAL GAVS code (not part of avsynth; documentation).

Usage (see README.md in this folder)::

    python tests/data/official/gavs/make_fixture.py --official /tmp/gavs_off/GAVS --out tests/data/official/gavs

``--official`` is the ``GAVS/`` folder of a checkout of
https://github.com/GeWu-Lab/Generalizable-Audio-Visual-Segmentation. This script contains no
official code: it copies that folder to a temporary directory, substitutes a few hard-coded width
literals (listed in ``SUBSTITUTIONS``, each must occur exactly once) so the model runs at tiny
dimensions, imports the official modules from there and records their outputs.

A second, unpatched import (``--layout-only``, run as a subprocess) records the key layout (names
and shapes) of the official ViT-B GAVS model on the meta device: ``vit_b_layout.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

# (file relative to GAVS/segment_anything, literal, replacement): the official widths 256 (decoder),
# 512 (audio projection hidden) and 128 (both adapters' hidden) are literals in the official code.
SUBSTITUTIONS = [
    ("modeling/transformer.py", "self.adapter_tf = AdapterLayer(256, 128)", "self.adapter_tf = AdapterLayer(32, 16)"),
    ("modeling/mask_decoder.py", "nn.Linear(128, 512),", "nn.Linear(128, 64),"),
    ("modeling/mask_decoder.py", "nn.Linear(512, 256)", "nn.Linear(64, 32)"),
    ("modeling/mask_decoder.py", "sparse_prompt_embeddings.shape[-1] == 256", "sparse_prompt_embeddings.shape[-1] == 32"),
    ("modeling/image_encoder.py", "nn.Linear(self.dim_v, 128),", "nn.Linear(self.dim_v, 16),"),
    ("modeling/image_encoder.py", "nn.Linear(128, self.dim_v)", "nn.Linear(16, self.dim_v)"),
]

# the tiny SAM (avsynth's SAM_ARCHS["tiny"], spelled out): 64² input, 8-px patches, 4 blocks
TINY = dict(embed_dim=32, depth=4, num_heads=2, global_attn=(1, 3), image_size=64, patch_size=8,
            window_size=4, prompt_dim=32, mask_in_chans=8, decoder_depth=2, decoder_mlp_dim=64,
            decoder_heads=2, iou_hidden=32)
TUNE_V = 2
ORIGINAL_SIZE = (48, 80)  # a 5:3 frame: longest side 80 → 64, input size (38, 64)
INPUT_SIZE = (38, 64)
FRAMES = 3
TRAIN_SEED = 123


def _import_official(gavs_dir: Path, tune_v: int):
    sys.argv = [sys.argv[0], "--tune_v", str(tune_v), "--device", "cpu"]  # config.py parses argv
    sys.path.insert(0, str(gavs_dir / "segment_anything"))
    sys.path.insert(0, str(gavs_dir))
    from avs_model import AVSM
    from modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    return AVSM, ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer


def layout(gavs_dir: Path, out: Path) -> None:
    """Key names and shapes of the official ViT-B GAVS (``AVSM.state_dict()``), unpatched code."""
    AVSM, *_ = _import_official(gavs_dir, 9)
    from build_sam import build_sam_vit_b

    with torch.device("meta"):
        avs = AVSM(model_v=build_sam_vit_b(), model_t=None, config={"device": "cpu", "tune_v": 9})
    shapes = {k: list(v.shape) for k, v in avs.state_dict().items()}
    (out / "vit_b_layout.json").write_text(json.dumps(shapes, indent=0, sort_keys=True) + "\n")


def fixture(gavs_dir: Path, out: Path) -> None:
    AVSM, ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer = _import_official(gavs_dir, TUNE_V)
    from functools import partial

    t = TINY
    torch.manual_seed(0)
    emb = t["image_size"] // t["patch_size"]
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=t["depth"], embed_dim=t["embed_dim"], img_size=t["image_size"], mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=t["num_heads"],
            patch_size=t["patch_size"], qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=t["global_attn"], window_size=t["window_size"], out_chans=t["prompt_dim"]),
        prompt_encoder=PromptEncoder(
            embed_dim=t["prompt_dim"], image_embedding_size=(emb, emb),
            input_image_size=(t["image_size"], t["image_size"]), mask_in_chans=t["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=t["decoder_depth"], embedding_dim=t["prompt_dim"],
                                          mlp_dim=t["decoder_mlp_dim"], num_heads=t["decoder_heads"]),
            transformer_dim=t["prompt_dim"], iou_head_depth=3, iou_head_hidden_dim=t["iou_hidden"]),
    )
    # random weights everywhere (SAM zero-initialises rel-pos, pos-embed; LayerNorms start at 1/0)
    with torch.no_grad():
        for name, p in sam.named_parameters():
            if name.endswith("weight") and ("norm" in name or p.dim() == 1):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif p.dim() >= 2 and "pos" not in name:  # weights ~ N(0, 1/fan_in): logits of order 1
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)
            else:
                p.copy_(0.2 * torch.randn_like(p))
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:  # mask logits of order 1, not 0.05
            mlp.layers[-1].weight.mul_(20.0)
    avs = AVSM(model_v=sam, model_t=None,
               config={"device": "cpu", "loss": F.binary_cross_entropy_with_logits, "tune_v": TUNE_V})

    g = torch.Generator().manual_seed(1)
    images = torch.zeros(FRAMES, 3, t["image_size"], t["image_size"])  # normalised, zero-padded
    images[:, :, : INPUT_SIZE[0], : INPUT_SIZE[1]] = torch.randn(FRAMES, 3, *INPUT_SIZE, generator=g)
    audio = torch.randn(FRAMES, 128, generator=g) * 0.5 + 0.1
    masks = (torch.rand(FRAMES, *ORIGINAL_SIZE, generator=g) > 0.6).float()

    def batch_data():  # what the official DataLoader (batch_size=1: one video) hands AVSM.forward
        img_recs = [{"image": images[i : i + 1], "input_size": INPUT_SIZE, "original_size": ORIGINAL_SIZE,
                     "audio": audio[i : i + 1]} for i in range(FRAMES)]
        mask_recs = [masks[i].reshape(1, 1, 1, *ORIGINAL_SIZE) for i in range(FRAMES)]
        return img_recs, mask_recs, "vid", "cat", None, None

    record: dict = {"images": images, "audio": audio, "masks": masks,
                    "input_size": torch.tensor(INPUT_SIZE), "original_size": torch.tensor(ORIGINAL_SIZE),
                    "tune_v": torch.tensor(TUNE_V), "train_seed": torch.tensor(TRAIN_SEED)}

    avs.eval()
    with torch.no_grad():
        preds, _, losses = avs(batch_data())
        record["eval_native_logits"] = torch.cat(preds)  # [F, 1, H, W]
        record["eval_losses"] = torch.stack(losses)
        low, iou = [], []
        for i in range(FRAMES):
            lr, ip = avs.decode_with_pmp(sam.image_encoder(images[i : i + 1]), audio[i : i + 1])
            low.append(lr)
            iou.append(ip)
        record["eval_low_res_logits"] = torch.cat(low)  # [F, 1, 32, 32]
        record["eval_iou"] = torch.cat(iou)

    avs.train()
    torch.manual_seed(TRAIN_SEED)
    preds, _, losses = avs(batch_data())
    loss = torch.mean(torch.stack(losses))  # run_v1m_x.py: the video's loss
    loss.backward()
    record["train_native_logits"] = torch.cat(preds).detach()
    record["train_loss"] = loss.detach()
    for key in ("mask_decoder.audio_proj.0.weight", f"image_encoder.blocks.{TUNE_V}.adapter_v.0.weight",
                "mask_decoder.transformer.layers.0.adapter_tf.dense.weight"):
        record[f"grad:{key}"] = dict(sam.named_parameters())[key].grad.clone()

    torch.save({k: v.detach().clone() for k, v in avs.state_dict().items()}, out / "official_state_dict.pt")
    torch.save(record, out / "io.pt")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", type=Path, required=True, help="the GAVS/ folder of the official repository")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--layout-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.layout_only:
        layout(args.official, args.out)
        return
    subprocess.run([sys.executable, __file__, "--official", str(args.official), "--out", str(args.out),
                    "--layout-only"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        patched = Path(tmp) / "GAVS"
        shutil.copytree(args.official, patched, ignore=shutil.ignore_patterns("*.pth", "*.npy", "*.zip", "v3"))
        for rel, old, new in SUBSTITUTIONS:
            f = patched / "segment_anything" / rel
            text = f.read_text()
            if text.count(old) != 1:
                raise SystemExit(f"{f}: expected exactly one {old!r}")
            f.write_text(text.replace(old, new))
        fixture(patched, args.out)


if __name__ == "__main__":
    main()
