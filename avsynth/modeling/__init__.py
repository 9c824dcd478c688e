"""Audio-visual segmentation models on Segment Anything: SAMA-AVS, AP-SAM, GAVS; VGGish audio.

The common model interface (what the trainer, the evaluator and the benchmarks call)::

    cfg = load_config("sama-avs-vit-h")            # plain dict, from models/*.yaml or a path
    model = build_model(cfg)                       # an AVSegmenter; model.config == cfg
    vggish = build_vggish_for(cfg)                 # frozen VGGishEmbedder (separate module)

    batch = model.preprocess(list_of_uint8_HxWx3)  # PreprocessedBatch(images, original_sizes,
                                                   #                   input_sizes)
    out = model(batch.images, audio)               # images [B,3,S,S] SAM-normalised + padded,
                                                   # audio [B,128] VGGish embeddings
    out.logits                                     # [B,1,256,256] low-res mask logits (S=1024)
    out.aux                                        # GAVS: audio_prompt, image_embeddings
    loss = model.loss(out, gt_masks)               # the paper's loss; gt {0,1} [B,1,H,W]
                                                   # (resized to the logits' size)
    opt = AdamW(model.trainable_parameters(), ...) # only adapters / decoder / prompts train
    full = model.postprocess(out.logits[i:i+1], batch.input_sizes[i], batch.original_sizes[i])

    predictor = AVPredictor(model, vggish=vggish)  # the one inference path (validation, bench)
    logits = predictor.predict(frames, audio)      # list of [H, W] logits at each frame's size
    logits = predictor.predict_waveforms(frames, waveforms, sample_rate)

    save_checkpoint(model, "run/model.pt", cfg)    # state dict + config only
    model = load_checkpoint("run/model.pt")        # torch.load(weights_only=True)

Every trainable parameter receives a gradient in a training step; frozen ones never do (the SAM
decoder's multimask hypernetworks and IoU head are unused with a single mask and stay frozen).
"""

from avsynth.modeling.ap_sam import ApSam
from avsynth.modeling.base import AVSegmenter, SegmentationOutput
from avsynth.modeling.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from avsynth.modeling.gavs import Gavs
from avsynth.modeling.predictor import AVPredictor
from avsynth.modeling.registry import (
    MODEL_FAMILIES,
    MODEL_NAMES,
    ModelConfigError,
    ParameterCounts,
    build_model,
    build_vggish_for,
    list_configs,
    load_config,
    parameter_counts,
    validate_config,
    with_weight_paths,
)
from avsynth.modeling.sam import SAM_ARCHS, CheckpointError, LoadReport, SamArch, build_sam, load_sam_checkpoint
from avsynth.modeling.sama_avs import SamaAvs
from avsynth.modeling.transforms import PreprocessedBatch
from avsynth.modeling.vggish import VGGish, VGGishEmbedder, build_vggish

__all__ = [
    "AVPredictor",
    "AVSegmenter",
    "ApSam",
    "CheckpointError",
    "Gavs",
    "LoadReport",
    "MODEL_FAMILIES",
    "MODEL_NAMES",
    "ModelConfigError",
    "ParameterCounts",
    "PreprocessedBatch",
    "SAM_ARCHS",
    "SamArch",
    "SamaAvs",
    "SegmentationOutput",
    "VGGish",
    "VGGishEmbedder",
    "build_model",
    "build_sam",
    "build_vggish",
    "build_vggish_for",
    "list_configs",
    "load_checkpoint",
    "load_config",
    "load_sam_checkpoint",
    "parameter_counts",
    "read_checkpoint",
    "save_checkpoint",
    "validate_config",
    "with_weight_paths",
]
