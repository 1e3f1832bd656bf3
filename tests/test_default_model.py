"""The bundled default model on the bundled example photo, against stored expected points.

Tolerance: every point within 2 px and the mean within 0.5 px of the stored values (the
reference decoder's integer argmax can move by one heatmap pixel = 1 crop pixel at 128 px
under different float summation orders; the crop is about 95 px wide here).
Regenerate the stored points only when the default weights change:
    python tests/test_default_model.py --write
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabrec.cli import main
from fabrec.sample_photo import SAMPLE_IMAGE as DEMO_IMAGE
from fabrec.weights import WEIGHTS_DIR

EXPECTED = Path(__file__).parent / "data" / "astronaut_default_expected.json"
pytestmark = pytest.mark.skipif(not (WEIGHTS_DIR / "default.safetensors").exists(), reason="no bundled default weights")


def predict() -> dict:
    from fabrec import LandmarkPredictor

    p = LandmarkPredictor.from_pretrained("default", device="cpu", precision="fp32")  # the published points
    (face, *_) = p.predict(DEMO_IMAGE)
    return {"box": list(face.box), "points": face.points.tolist(), "confidence": face.confidence.tolist()}


def test_default_model_on_the_example_photo() -> None:
    got = predict()
    want = json.loads(EXPECTED.read_text())
    np.testing.assert_allclose(got["box"], want["box"], atol=1.0)
    d = np.linalg.norm(np.array(got["points"]) - np.array(want["points"]), axis=1)
    assert d.max() <= 2.0 and d.mean() <= 0.5, (d.max(), d.mean())
    assert np.abs(np.array(got["confidence"]) - np.array(want["confidence"])).max() < 0.05


def test_demo_command(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "68 points" in out
    rec = json.loads((tmp_path / "astronaut.json").read_text())
    assert len(rec["faces"]) >= 1 and len(rec["faces"][0]["points"]) == 68
    assert (tmp_path / "astronaut_landmarks.jpg").stat().st_size > 0
    assert (tmp_path / "astronaut_reconstruction.png").stat().st_size > 0
    # the README's picture is what the demo writes (same size, same drawing up to JPEG noise)
    got = cv2.imread(str(tmp_path / "astronaut_landmarks.jpg")).astype(np.float64)
    shown = cv2.imread(str(Path(__file__).resolve().parents[1] / "docs" / "demo_astronaut.jpg")).astype(np.float64)
    assert got.shape == shown.shape and np.abs(got - shown).mean() < 2.0


if __name__ == "__main__" and "--write" in sys.argv:
    EXPECTED.write_text(json.dumps(predict(), indent=1) + "\n")
    print(f"wrote {EXPECTED}")


def test_bench_reports_positive_rates_and_a_consistent_decode_share() -> None:
    from fabrec.bench import bench

    r = bench("default", "torch", batch_size=2, reps=3, warmup=1)
    assert r["faces_per_s"] > 0 and r["network_faces_per_s"] > 0
    assert r["latency_ms_p90"] >= r["latency_ms_median"] > 0
    # the network alone cannot be slower than network + decoding by more than timing noise
    assert r["network_faces_per_s"] > 0.5 * r["faces_per_s"]
    assert r["gflop_per_face"] > 0.5 and 0 < r["ratio_to_ceiling"]
    if r["fma_peak_gflops"] is not None:  # needs a C compiler
        # no code runs faster than the FMA units: the network's rate is below the peak
        assert 0 < r["ratio_to_fma_peak"] < 1 and 0 < r["end_to_end_ratio_to_fma_peak"] < 1
        assert r["fma_peak_gflops"] >= r["fma_peak_gflops_per_thread"] > 0
    assert r["conv_stack_gflops"] > 0


def test_the_chunked_fast_path_gives_the_whole_batch_points_and_bf16_stays_close() -> None:
    import dataclasses

    import torch

    from fabrec.errors import FabrecError
    from fabrec.landmark_model import TAIL_FACES, load_landmark_model
    from fabrec.sample_photo import face_crops

    m = load_landmark_model("default").placed(torch.device("cpu"))
    x = face_crops(m.image_size, 2 * TAIL_FACES + 1, seed=4).contiguous(memory_format=torch.channels_last)
    pts, conf, hm, _ = m.predict_crops(x)  # whole batch of heatmaps, then decoded
    fast_pts, fast_conf, rec = m.locate(x)  # heatmaps made and decoded a few faces at a time
    assert torch.equal(fast_pts, pts) and torch.equal(fast_conf, conf) and rec is None
    assert sum(len(h) for h in m.heatmap_chunks(x)) == len(x)
    b = dataclasses.replace(m, precision="bf16")
    bpts, _, brec = b.locate(x, reconstruct=True)
    assert brec is not None and brec.dtype == torch.float32
    assert (bpts - pts).norm(dim=-1).mean() < 1.0  # crop pixels (128-px crops)
    with pytest.raises(FabrecError, match="precision"):
        dataclasses.replace(m, precision="int4")


def test_reconstruction_uses_the_autoencoders_encoder_and_grey_photos_get_a_fair_quality() -> None:
    """The bundled encoder was finetuned for landmarks; the generator reconstructs only from
    its autoencoder's codes, so quality and reconstructions go through ``ae_encoder``."""
    import torch

    from fabrec import LandmarkPredictor
    from fabrec.io import read_image

    p = LandmarkPredictor.from_pretrained("default", device="cpu")
    net = p.model.net
    assert net.ae_encoder is not None
    rgb = read_image(DEMO_IMAGE)
    crop, _ = p.reconstruct(rgb)
    from fabrec.normalization import to_tensor

    x = to_tensor(crop)[None].contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        via_ae = (net.reconstruct(x) - x).abs().mean().item()
        via_finetuned = (net.generator(net.encoder(x)) - x).abs().mean().item()
    assert via_ae < 0.7 * via_finetuned
    grey = np.repeat(rgb.mean(2, keepdims=True), 3, 2).astype(np.uint8)
    (fc,), (fg,) = p.predict(rgb), p.predict(grey)
    assert fc.quality > 0.3 and abs(fg.quality - fc.quality) < 0.15
