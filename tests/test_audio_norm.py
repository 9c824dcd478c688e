"""Audio standardisation at the model input (``model.audio_norm: fit``, :mod:`avsynth.modeling.audio_norm`).

Expected values are stated by hand (statistics of small known vectors) or from the fixture tree's
construction (``tests/avsbench_fixture.py``: second s of every train video's audio is the constant
``0.05 (s + 1)``; the test rewrites the validation videos' audio as loud noise, so statistics that
read them would differ).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from avsynth.errors import AvsynthError
from avsynth.modeling.audio_norm import AudioNormError, audio_statistics
from avsynth.modeling.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from avsynth.modeling.registry import ModelConfigError, build_model, build_vggish_for, load_config
from avsynth.sources.avsbench import AVSBenchSource
from avsynth.training.audio_norm_fit import fit_audio_norm
from avsynth.training.data import InputSpec, avsbench_datasets
from avsynth.training.embeddings import AudioEmbeddings
from avsynth.training.trainer import TrainConfig, train
from tests.avsbench_fixture import pick_rows, write_semantic_tree

HOP, SPAN = 15360, 15600  # the official VGGish example cut: example t = samples [HOP t, HOP t + SPAN)


def _with_norm(name: str) -> dict:
    cfg = load_config(name)
    cfg["model"]["audio_norm"] = "fit"
    return cfg


def test_statistics_of_known_vectors():
    x = torch.tensor([[1.0, 2.0, 7.0, -1.0],
                      [3.0, 6.0, 7.0, 1.0],
                      [5.0, 10.0, 7.0, 0.0]])
    mean, std = audio_statistics(x)
    # by hand: means 3, 6, 7, 0; population std sqrt(8/3), 2 sqrt(8/3), 0 -> 1 (constant dim), sqrt(2/3)
    assert torch.allclose(mean, torch.tensor([3.0, 6.0, 7.0, 0.0]))
    assert torch.allclose(std, torch.tensor([(8 / 3) ** 0.5, 2 * (8 / 3) ** 0.5, 1.0, (2 / 3) ** 0.5]))
    with pytest.raises(ValueError):
        audio_statistics(torch.zeros(0, 4))


@pytest.mark.parametrize("name, audio_module", [("aavs-tiny", "audio_proj"), ("sama-avs-tiny", "adapters")])
def test_forward_sees_standardised_audio(name, audio_module):
    model = build_model(_with_norm(name)).eval()
    fit = torch.tensor([[1.0] * 128, [3.0] * 128, [5.0] * 128])  # mean 3, std sqrt(8/3) in every dim
    fit[:, 0] = 4.0  # a constant dimension: centred, not scaled
    assert model.audio_norm.fit(fit) == 3
    seen = []
    getattr(model, audio_module).register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    audio = torch.arange(2 * 128, dtype=torch.float32).reshape(2, 128) / 50
    images = torch.zeros(2, 3, model.image_size, model.image_size)
    with torch.no_grad():
        model(images, audio)
    expected = (audio - 3.0) / (8 / 3) ** 0.5
    expected[:, 0] = audio[:, 0] - 4.0
    assert torch.allclose(seen[0].reshape(2, 128), expected, atol=1e-6)
    # zeroed audio (the bench's control) reaches the model as the constant -mean / std
    seen.clear()
    with torch.no_grad():
        model(images, torch.zeros(2, 128))
    assert torch.allclose(seen[0].reshape(2, 128)[:, 1:], torch.full((2, 127), -3.0 / (8 / 3) ** 0.5), atol=1e-6)


def test_unfitted_model_refuses_to_run_and_default_is_off():
    images, audio = torch.zeros(1, 3, 64, 64), torch.ones(1, 128)
    model = build_model(_with_norm("aavs-tiny"))
    with pytest.raises(AudioNormError, match="never fitted"):
        model(images, audio)
    plain = build_model(load_config("aavs-tiny"))  # shipped configs: off, no buffers, audio as given
    assert plain.audio_norm is None and not any(k.startswith("audio_norm.") for k in plain.state_dict())
    bad = load_config("aavs-tiny")
    bad["model"]["audio_norm"] = "standardise"
    with pytest.raises(ModelConfigError, match="audio_norm must be one of"):
        build_model(bad)


def test_checkpoint_round_trip_keeps_the_statistics(tmp_path):
    cfg = _with_norm("sama-avs-tiny")
    model = build_model(cfg).eval()
    model.audio_norm.fit(torch.linspace(-2, 9, 5 * 128).reshape(5, 128))
    save_checkpoint(model, tmp_path / "full.pt", cfg)
    back = load_checkpoint(tmp_path / "full.pt").eval()
    for key in ("mean", "std", "vectors"):
        assert torch.equal(getattr(back.audio_norm, key), getattr(model.audio_norm, key)), key
    assert int(back.audio_norm.vectors) == 5
    images, audio = torch.rand(1, 3, 64, 64), torch.rand(1, 128) * 9
    with torch.no_grad():
        assert torch.equal(back(images, audio).logits, model(images, audio).logits)
    # trainable-only checkpoints (the frozen rest rebuilt from the SAM file) keep them too
    save_checkpoint(model, tmp_path / "partial.pt", cfg, trainable_only=True)
    state = read_checkpoint(tmp_path / "partial.pt")["state_dict"]
    assert torch.equal(state["audio_norm.mean"], model.audio_norm.mean)
    assert int(state["audio_norm.vectors"]) == 5


@pytest.fixture(scope="module")
def s4_tree(tmp_path_factory, labels_dir):
    rows = pick_rows(labels_dir / "gavs_avs_v3" / "metadata.csv", multi_object=False)
    rows = rows[rows["label"] == "v1s"]
    root = write_semantic_tree(tmp_path_factory.mktemp("audio-norm") / "avsbench", rows,
                               labels_dir / "avsbench_avss_classes.csv", (64, 48))
    rng = np.random.default_rng(0)
    for uid in rows[rows["split"] != "train"]["uid"]:  # loud noise: visible in the statistics if read
        sf.write(str(root / "v1s" / uid / "audio.wav"), rng.uniform(-1, 1, 5 * 16000).astype(np.float32),
                 16000, subtype="FLOAT")
    return root


def _expected_train_stats(root, vggish):
    """Per-second vectors of the train videos straight from their WAVs (the official cut)."""
    src = AVSBenchSource(root, subset="s4")
    vecs = []
    for v in src.videos("train"):
        wave, sr = sf.read(v.audio_path, dtype="float32")
        vecs += [vggish.embed_clip(wave[HOP * t: HOP * t + SPAN], sr) for t in range(5)]
    x = torch.stack(vecs).double()
    std = x.std(0, unbiased=False)
    return x.mean(0).float(), torch.where(std < 1e-6, 1.0, std).float(), len(vecs)


def test_fit_reads_the_train_split_only(s4_tree):
    cfg = _with_norm("aavs-tiny")
    model = build_model(cfg)
    emb = AudioEmbeddings(build_vggish_for(cfg))
    train_ds, val_ds = avsbench_datasets(AVSBenchSource(s4_tree, subset="s4"), InputSpec.of(model), emb, seed=0,
                                         first_frame_per_second=True)
    mean, std, n = _expected_train_stats(s4_tree, emb.vggish)
    record = fit_audio_norm(model, train_ds, emb)
    assert record["vectors"] == n == 5 * len(AVSBenchSource(s4_tree, subset="s4").videos("train"))
    assert record["fitted_on"] == "train split"
    assert torch.allclose(model.audio_norm.mean, mean, atol=1e-5)
    assert torch.allclose(model.audio_norm.std, std, atol=1e-5)
    val_mean = torch.stack([val_ds[i]["audio"] for i in range(len(val_ds))]).mean(0)
    assert (val_mean - mean).norm() > 1.0  # the validation audio differs: reading it would show
    assert fit_audio_norm(model, val_ds, emb)["fitted_on"] == "loaded weights"  # fitted once, kept
    assert torch.allclose(model.audio_norm.mean, mean, atol=1e-5)
    assert fit_audio_norm(build_model(load_config("aavs-tiny")), train_ds, emb) is None


def test_trainer_fits_before_training_and_records_it(s4_tree, tmp_path):
    run = tmp_path / "run"
    r = train(TrainConfig(out=run, model="aavs-tiny", avsbench=AVSBenchSource(s4_tree, subset="s4"), epochs=2,
                          stop_after_epochs=1, audio_norm="fit", cpu=True, num_workers=0, progress=False))
    mean, std, n = _expected_train_stats(s4_tree, build_vggish_for(load_config("aavs-tiny")))
    start = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["audio_norm"]["vectors"] == n
    assert start["model"]["model"]["audio_norm"] == "fit"
    assert json.loads((run / "result.json").read_text())["audio_norm"]["vectors"] == n
    best = load_checkpoint(run / "best.pt")  # the config it stores rebuilds the norm; buffers loaded
    assert int(best.audio_norm.vectors) == n
    assert torch.allclose(best.audio_norm.mean, mean, atol=1e-5)
    assert torch.allclose(best.audio_norm.std, std, atol=1e-5)
    assert r.history[0]["steps"] == len(AVSBenchSource(s4_tree, subset="s4").videos("train"))
    with pytest.raises(AvsynthError, match="audio_norm must be one of"):
        train(TrainConfig(out=tmp_path / "bad", model="aavs-tiny", avsbench=AVSBenchSource(s4_tree, subset="s4"),
                          audio_norm="yes", cpu=True, num_workers=0, progress=False))


def test_shard_training_fits_on_the_train_rows_clips(tmp_path):
    import io

    import pyarrow.parquet as pq

    from tests._tiny_shards import make_shard_dir

    shards = make_shard_dir(tmp_path / "shards", rows={"train": 8, "validation": 4, "test": 2},
                            shards={"train": 2, "validation": 1, "test": 1})
    vggish = build_vggish_for(load_config("sama-avs-tiny"))

    def clips(split):  # each row's own clip, decoded here with soundfile
        out = []
        for path in sorted((shards / "data").glob(f"{split}-*.parquet")):
            for cell in pq.read_table(path, columns=["audio"]).column("audio").to_pylist():
                wave, sr = sf.read(io.BytesIO(cell["bytes"]), dtype="float32")
                out.append(vggish.embed_clip(wave, sr))
        return torch.stack(out).double()

    train_x, val_x = clips("train"), clips("validation")
    assert len(train_x) == 8
    assert (val_x.mean(0) - train_x.mean(0)).norm() > 1e-3  # reading validation would show
    r = train(TrainConfig(out=tmp_path / "run", model="sama-avs-tiny", data=str(shards), epochs=1, batch_size=4,
                          audio_norm="fit", cpu=True, num_workers=0, progress=False))
    assert r.completed
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert int(best.audio_norm.vectors) == 8
    assert torch.allclose(best.audio_norm.mean, train_x.mean(0).float(), atol=1e-5)
    std = train_x.std(0, unbiased=False)
    assert torch.allclose(best.audio_norm.std, torch.where(std < 1e-6, 1.0, std).float(), atol=1e-5)
