"""Segment Anything (SAM) built from the ``segment_anything`` package's classes, and loaded safely.

:data:`SAM_ARCHS` names the official image encoders (vit_b / vit_l / vit_h, 1024² input, 16-px
patches) and a ``tiny`` one for CPU tests. :func:`load_sam_checkpoint` reads an official
``sam_vit_*.pth`` from a local path with ``torch.load(..., weights_only=True)`` and *reports*
missing and unexpected keys (a silent ``strict=False`` load is how prompt-encoder weights get lost).

The helpers at the bottom split SAM's forward into the pieces the audio-visual models reuse:
:func:`encoder_tokens` / :func:`encoder_neck` around the ViT blocks, and :func:`decode_masks`, a
*batched* call of the mask decoder (``MaskDecoder.predict_masks`` repeats image embeddings per
prompt, which is only right for one image at a time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import torch
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)
from torch import nn

from avsynth.errors import AvsynthError, SourceError

log = logging.getLogger(__name__)


class CheckpointError(AvsynthError):
    """A checkpoint does not fit the model it is loaded into (keys or shapes)."""


@dataclass(frozen=True)
class SamArch:
    """The shape of a SAM model: image encoder, prompt encoder and mask decoder sizes."""

    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    image_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256
    num_multimask_outputs: int = 3

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid (64 for the official models)."""
        return self.image_size // self.patch_size

    @property
    def low_res_size(self) -> int:
        """Side of the decoder's low-resolution mask logits (256 for the official models)."""
        return 4 * self.embedding_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["encoder_global_attn_indexes"] = list(self.encoder_global_attn_indexes)
        return d


SAM_ARCHS: dict[str, SamArch] = {
    "vit_b": SamArch(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": SamArch(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": SamArch(1280, 32, 16, (7, 15, 23, 31)),
    # CPU test model: 64² input, 8-px patches (8x8 grid, 32² low-res masks), windowed + global
    # attention with relative positions like the real encoders.
    "tiny": SamArch(
        encoder_embed_dim=32,
        encoder_depth=4,
        encoder_num_heads=2,
        encoder_global_attn_indexes=(1, 3),
        image_size=64,
        patch_size=8,
        window_size=4,
        prompt_embed_dim=32,
        mask_in_chans=8,
        decoder_depth=2,
        decoder_mlp_dim=64,
        decoder_num_heads=2,
        iou_head_hidden_dim=32,
    ),
}


def sam_arch(spec: str | Mapping | SamArch) -> SamArch:
    """A :class:`SamArch` from a name in :data:`SAM_ARCHS`, a dict of its fields, or itself.

    A dict may name a base with ``base: vit_b`` and override single fields.
    """
    if isinstance(spec, SamArch):
        return spec
    if isinstance(spec, str):
        if spec not in SAM_ARCHS:
            raise ValueError(f"unknown SAM arch {spec!r}; known: {sorted(SAM_ARCHS)}")
        return SAM_ARCHS[spec]
    if isinstance(spec, Mapping):
        d = dict(spec)
        base = d.pop("base", None)
        known = {f.name for f in fields(SamArch)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SAM arch fields {unknown}; known: {sorted(known)}")
        if "encoder_global_attn_indexes" in d:
            d["encoder_global_attn_indexes"] = tuple(int(i) for i in d["encoder_global_attn_indexes"])
        if base is not None:
            return SamArch(**{**asdict(sam_arch(base)), **d})
        return SamArch(**d)
    raise TypeError(f"SAM arch must be a name, a mapping or a SamArch, not {type(spec).__name__}")


def build_sam(arch: SamArch) -> Sam:
    """A randomly initialised ``segment_anything.modeling.Sam`` of the given shape (eval mode)."""
    emb = arch.embedding_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=arch.encoder_depth,
            embed_dim=arch.encoder_embed_dim,
            img_size=arch.image_size,
            mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=arch.encoder_num_heads,
            patch_size=arch.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=arch.encoder_global_attn_indexes,
            window_size=arch.window_size,
            out_chans=arch.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=arch.prompt_embed_dim,
            image_embedding_size=(emb, emb),
            input_image_size=(arch.image_size, arch.image_size),
            mask_in_chans=arch.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=arch.num_multimask_outputs,
            transformer=TwoWayTransformer(
                depth=arch.decoder_depth,
                embedding_dim=arch.prompt_embed_dim,
                mlp_dim=arch.decoder_mlp_dim,
                num_heads=arch.decoder_num_heads,
            ),
            transformer_dim=arch.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=arch.iou_head_hidden_dim,
        ),
    )
    return sam.eval()


@dataclass
class LoadReport:
    """What a state-dict load did: keys the model wanted but the file lacked, and the reverse."""

    path: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.missing and not self.unexpected

    def summary(self) -> str:
        def short(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")

        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing keys: {short(self.missing)}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected keys: {short(self.unexpected)}")
        return "; ".join(parts) or "all keys matched"


def load_torch_file(path: str | Path, what: str):
    """``torch.load(path, map_location="cpu", weights_only=True)``, or a one-line SourceError naming
    the file and ``what`` it should be (missing, or not loadable)."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(p, f"{what} not found")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise SourceError(p, f"not a loadable {what} (torch.load weights_only=True): {err}") from err


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` → a flat {name: tensor} dict, or a clear error."""
    p = Path(path)
    state = load_torch_file(p, what)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SourceError(p, f"{what} is not a state dict of tensors")
    return dict(state)


def load_state_checked(
    module: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path
) -> LoadReport:
    """Load matching keys into ``module``; shape mismatches raise, key mismatches are reported."""
    own = module.state_dict()
    bad = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if bad:
        raise CheckpointError(f"{path}: shape mismatch for {len(bad)} tensors: {'; '.join(bad[:5])}")
    result = module.load_state_dict(state, strict=False)
    return LoadReport(str(path), sorted(result.missing_keys), sorted(result.unexpected_keys))


def load_sam_checkpoint(sam: Sam, path: str | Path, allow_missing_encoder: bool = False) -> LoadReport:
    """Load an official SAM checkpoint (``sam_vit_{b,l,h}_*.pth``) into ``sam``.

    Missing and unexpected keys are logged as a warning and returned; missing image-encoder keys
    raise :class:`CheckpointError` unless ``allow_missing_encoder`` (a frozen random encoder is never
    what anyone wants).
    """
    report = load_state_checked(sam, read_state_dict(path, "SAM checkpoint"), path)
    if not report.clean:
        log.warning("SAM checkpoint %s: %s", path, report.summary())
    enc_missing = [k for k in report.missing if k.startswith("image_encoder.")]
    if enc_missing and not allow_missing_encoder:
        raise CheckpointError(
            f"{path}: the SAM checkpoint lacks {len(enc_missing)} image-encoder weights "
            f"(e.g. {enc_missing[0]}); is it the checkpoint of a different SAM arch?"
        )
    return report


# ---- pieces of SAM's forward, reused by the audio-visual models ------------------------------


def encoder_tokens(encoder: ImageEncoderViT, images: torch.Tensor) -> torch.Tensor:
    """[B, 3, S, S] normalised images → [B, S/p, S/p, C] patch tokens with positional embedding."""
    x = encoder.patch_embed(images)
    if encoder.pos_embed is not None:
        x = x + encoder.pos_embed
    return x


def encoder_neck(encoder: ImageEncoderViT, tokens: torch.Tensor) -> torch.Tensor:
    """[B, h, w, C] tokens after the ViT blocks → [B, prompt_dim, h, w] image embeddings."""
    return encoder.neck(tokens.permute(0, 3, 1, 2))


def dense_no_mask(prompt_encoder: PromptEncoder, batch: int) -> torch.Tensor:
    """SAM's dense prompt for "no mask": the learned no-mask embedding at every position."""
    h, w = prompt_encoder.image_embedding_size
    return prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)


TransformerFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def decode_masks(
    decoder: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
    transformer: TransformerFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's mask decoder over a batch of (image, prompt) pairs, single-mask output.

    ``image_embeddings`` [B, C, h, w], ``image_pe`` [1, C, h, w], ``sparse`` [B, N, C] prompt
    tokens, ``dense`` [B, C, h, w]. Returns low-res mask logits [B, 1, 4h, 4w] and the predicted
    IoU [B, 1]. ``transformer`` replaces ``decoder.transformer`` (used to add adapters).
    """
    b = image_embeddings.shape[0]
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([output_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
    src = image_embeddings + dense
    pos = image_pe.expand(b, -1, -1, -1)
    _, c, h, w = src.shape
    hs, src = (transformer or decoder.transformer)(src, pos, tokens)
    mask_token = hs[:, 1, :]  # token 0 of the mask tokens = the single-mask output
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = decoder.output_hypernetworks_mlps[0](mask_token)  # [B, C/8]
    bu, cu, hu, wu = upscaled.shape
    masks = (hyper.unsqueeze(1) @ upscaled.reshape(bu, cu, hu * wu)).reshape(bu, 1, hu, wu)
    iou = decoder.iou_prediction_head(hs[:, 0, :])[:, :1]
    return masks, iou


#: Decoder parameters a single-mask forward never touches (multimask hypernetworks, IoU head).
#: They stay frozen so every trainable parameter gets a gradient (DDP-safe, honest counts).
def single_mask_unused(name: str) -> bool:
    """True for mask-decoder parameter names unused by :func:`decode_masks`'s mask logits."""
    if name.startswith("mask_decoder.iou_prediction_head."):
        return True
    if name.startswith("mask_decoder.output_hypernetworks_mlps."):
        return name.split(".")[2] != "0"
    return False
