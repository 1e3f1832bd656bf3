"""A trained landmark model (encoder + generator + ITLs) with its scheme and framing: the one
inference core that prediction, evaluation, export, benchmarks and training validation use
to go from crops to heatmaps to points in the original image."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fabrec.config import ModelConfig
from fabrec.errors import FabrecError
from fabrec.face_filter import FaceFilter
from fabrec.faces.framing import Framing
from fabrec.head_pose import PoseCorrection
from fabrec.orientation import OrientationChooser
from fabrec.heatmaps import decode_heatmaps
from fabrec.inference_options import InferenceOptions
from fabrec.model import FabRec
from fabrec.normalization import to_tensor, to_uint8
from fabrec.model_file import PAPER_256, ModelFile, read_model_file
from fabrec.runtime import cpu_bf16_units, memory_format, resolve_device, resolve_precision
from fabrec.schemes import BUILTIN, Scheme
from fabrec.transforms import crop_to_image

PRECISIONS = ("fp32", "bf16")
TAIL_FACES = 4  # CPU: faces per last-block + heatmap-layer + decoding chunk (68 x 128^2 floats: 18 MB)


class Crop(NamedTuple):
    """What the network finds in one crop: points in crop pixels ``(K, 2)``, confidence ``(K,)``,
    the encoder's codes ``(L,)``, the mean absolute reconstruction error (0-255; NaN when not
    reconstructed) and the reconstruction ``(S, S, 3)`` or None."""

    points: np.ndarray
    confidence: np.ndarray
    codes: np.ndarray
    error: float
    reconstruction: np.ndarray | None


@dataclass
class Located:
    """What :meth:`LandmarkModel.located` finds in ``N`` crops.

    Attributes:
        points: ``(N, K, 2)`` in crop pixels.
        confidence: ``(N, K)`` heatmap peaks.
        codes: ``(N, latent_dim)`` the encoder's codes (what the face filter reads).
        reconstruction: ``(N, 3, S, S)`` in model space, or None.
    """

    points: torch.Tensor
    confidence: torch.Tensor
    codes: torch.Tensor
    reconstruction: torch.Tensor | None = None


@dataclass
class LandmarkModel:
    """What is needed to turn face crops into points.

    Attributes:
        net: the FabRec network (eval mode).
        scheme: landmark layout.
        decoder: ``reference`` or ``subpixel``.
        precision: ``fp32`` (the published points) or ``bf16`` (the network under bfloat16
            autocast: 1.6-2x faster on CPUs with AVX-512 BF16 or AMX, points move slightly, see
            the README's speed table; what ``--dtype auto``, the commands' default, picks there).
        flip_average: test-time flip: heatmaps averaged with those of the mirrored crop (mirrored
            back, points swapped by the scheme's flip pairs); twice the work.
        mean_shape: ``(K, 2)`` mean training points in crop units (``detector``-framed models:
            what re-cropping from points fits; see :mod:`fabrec.faces.framing`), or None.
        face_filter: the face filter fitted for this model (:mod:`fabrec.face_filter`), or None.
        min_confidence: detected faces with a lower mean point confidence are not faces, where
            no face filter is used (0: no cut).
        orientation: the rule choosing among a face's orientations fitted for this model
            (:class:`~fabrec.orientation.OrientationChooser`), or None (the plain rule).
        head_pose: the correction of the PnP head pose fitted for this model
            (:class:`~fabrec.head_pose.PoseCorrection`), or None (plain PnP).
    """

    net: FabRec
    scheme: Scheme
    decoder: str = "reference"
    precision: str = "fp32"
    mean_shape: np.ndarray | None = None
    flip_average: bool = False
    face_filter: FaceFilter | None = None
    min_confidence: float = 0.0
    orientation: OrientationChooser | None = None
    head_pose: PoseCorrection | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise FabrecError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        if self.flip_average and self.scheme.flip is None:
            raise FabrecError(f"scheme {self.scheme.name} has no flip pairs: --flip cannot mirror its points")

    @property
    def config(self) -> ModelConfig:
        return self.net.config

    @property
    def image_size(self) -> int:
        return self.net.config.image_size

    @property
    def framing(self) -> Framing:
        """How the model frames faces (:class:`~fabrec.faces.framing.Framing`: rule, margins,
        mean shape), as its model file records it."""
        return Framing.of(self.net.config, self.mean_shape)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @staticmethod
    def from_file(mf: ModelFile, fold_batchnorm: bool = False) -> LandmarkModel:
        """Build from a landmark :class:`~fabrec.model_file.ModelFile` (eval mode, CPU), with
        its BatchNorms folded into the convolutions before them if asked (as
        :meth:`with_folded_batchnorm`)."""
        if mf.kind != "landmarks":
            raise FabrecError(f"{mf.source}: an autoencoder, not a landmark model (train one with train-landmarks)")
        net = FabRec(config=mf.model, itl=tuple(mf.itl or ()))
        for name in ("encoder", "generator", "itl"):
            mf.load_net(name, getattr(net, name))
        if "ae_encoder" in mf.nets:
            mf.load_net("ae_encoder", net.add_ae_encoder())
        orient = None if mf.orientation is None else OrientationChooser.from_dict(mf.orientation, f"{mf.source}: orientation")
        flt = None if mf.face_filter is None else FaceFilter.from_dict(mf.face_filter, f"{mf.source}: face filter")
        pose = None if mf.head_pose is None else PoseCorrection.from_dict(mf.head_pose, f"{mf.source}: head pose")
        scheme = Scheme.from_dict(mf.scheme or {}, mf.source)
        shape = None if mf.mean_shape is None else np.asarray(mf.mean_shape, np.float64).reshape(scheme.num_points, 2)
        net = _folded(net) if fold_batchnorm else net.eval()
        return LandmarkModel(net, scheme, mf.decoder, mean_shape=shape, face_filter=flt,
                             min_confidence=mf.min_confidence, orientation=orient, head_pose=pose)

    def placed(self, device: torch.device) -> LandmarkModel:
        """This model on ``device`` in its inference layout (channels-last on CPU), in eval
        mode: ``self`` when it already is, else a copy (the caller's model is never moved)."""
        mf = memory_format(device)
        w = next(p for p in self.net.parameters() if p.dim() == 4)
        if self.device == device and not self.net.training and w.is_contiguous(memory_format=mf):
            return self
        net = copy.deepcopy(self.net).to(device, memory_format=mf).eval()
        return dataclasses.replace(self, net=net)

    def with_folded_batchnorm(self) -> LandmarkModel:
        """A copy whose BatchNorms are folded into the convolutions before them
        (:func:`fabrec.nn.fold.fold_batchnorm`; what every command runs unless told
        ``--no-fold-bn``): faster, points equal up to float rounding."""
        return dataclasses.replace(self, net=_folded(self.net))

    @property
    def batchnorm_folded(self) -> bool:
        """True when no BatchNorm is left in the landmark path."""
        return not any(isinstance(m, torch.nn.BatchNorm2d) for part in (self.net.encoder, self.net.generator)
                       for m in part.modules())

    def describe(self) -> str:
        """One line on how this model runs: device, precision, threads, decoder and kernels."""
        from fabrec.heatmaps import native_decoder_available

        kernel = "compiled" if self.device.type == "cpu" and native_decoder_available() else "torch"
        threads = f", {torch.get_num_threads()} thread(s)" if self.device.type == "cpu" else ""
        fold = ", BatchNorm folded" if self.batchnorm_folded else ""
        chunk = f"; heatmaps made and decoded {TAIL_FACES} faces at a time" if self.device.type == "cpu" else ""
        return (f"torch {self.precision} on {self.device.type}{threads}{fold}{self._why_precision()}; "
                f"{self.decoder} decoder ({kernel} kernel){chunk}")

    def _why_precision(self) -> str:
        """Why this precision, for :meth:`describe`: on a CPU, its bf16 units (what ``--dtype
        auto`` chooses by) and what the other choice would give."""
        if self.device.type != "cpu":
            return ""
        units = " and ".join(cpu_bf16_units())
        if self.precision == "bf16":
            return (f" (this CPU has {units}: faster than fp32, AFW NME the same; --dtype fp32 for the published "
                    "points)" if units else " (this CPU has no bf16 units: slower than fp32)")
        if not units:
            return " (no bf16 units on this CPU)"
        return f" (the published points; this CPU has {units}: --dtype auto or bf16 is faster, points move slightly)"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision context the network runs in (a no-op for ``fp32``)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _trunk(self, x: torch.Tensor, reconstruct: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`FabRec.coded_trunk` in this model's precision (codes and reconstruction as float32)."""
        with self.autocast():
            z, h, rec = self.net.coded_trunk(x, reconstruct)
        return z.float(), h, (None if rec is None else rec.float())

    def _tail(self, h: torch.Tensor) -> torch.Tensor:
        """:meth:`FabRec.tail` in this model's precision: heatmaps ``(n, K, H, H)`` float32."""
        with self.autocast():
            return self.net.tail(h).float()

    def _chunk(self, n: int) -> int:
        """Faces per tail chunk: :data:`TAIL_FACES` on the CPU (cache), the whole batch on a
        GPU (parallelism)."""
        return TAIL_FACES if self.device.type == "cpu" else max(n, 1)

    def _tails(self, h: torch.Tensor, mirrored: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """:meth:`_tail` over ``h`` in chunks of :meth:`_chunk` faces: heatmaps, chunk by chunk;
        with the trunk of the mirrored crops, each chunk averaged with its mirror's heatmaps
        mirrored back (channels swapped by the scheme's flip pairs)."""
        n = self._chunk(len(h))
        if mirrored is None:
            for c in h.split(n):
                yield self._tail(c)
            return
        perm = list(self.scheme.flip)  # type: ignore[arg-type]
        for c, m in zip(h.split(n), mirrored.split(n)):
            yield (self._tail(c) + self._tail(m).flip(-1)[:, perm]) / 2

    def _trunks(self, x: torch.Tensor, reconstruct: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """:meth:`_trunk` of the crops (codes, features), the features of their mirror images
        when ``flip_average`` (else None), and the reconstruction."""
        z, h, rec = self._trunk(x, reconstruct)
        return z, h, (self._trunk(x.flip(-1))[1] if self.flip_average else None), rec

    def heatmap_chunks(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """The heatmaps of crops ``(N, 3, S, S)``, :data:`TAIL_FACES` faces at a time: the
        network up to its last generator block runs on the whole batch, the last block (64x64
        maps), its ITL and the 128x128 heatmaps a few faces at a time (see :meth:`locate`)."""
        _, h, mirrored, _ = self._trunks(x, False)
        yield from self._tails(h, mirrored)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Crops ``(N, 3, S, S)`` (model space) -> heatmaps ``(N, K, H, H)`` float32 (the same
        values as :meth:`heatmap_chunks`, in one tensor)."""
        return torch.cat(list(self.heatmap_chunks(x)))

    def decode(self, hm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps ``(N, K, H, H)`` -> points ``(N, K, 2)`` in crop pixels, confidence ``(N, K)``."""
        return decode_heatmaps(hm.float(), self.decoder, self.image_size)

    @torch.no_grad()
    def locate(self, x: torch.Tensor, reconstruct: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Crops ``(N, 3, S, S)`` (model space) -> points ``(N, K, 2)`` in crop pixels,
        confidence ``(N, K)`` and the reconstruction ``(N, 3, S, S)`` or None (see :meth:`located`)."""
        got = self.located(x, reconstruct)
        return got.points, got.confidence, got.reconstruction

    @torch.no_grad()
    def located(self, x: torch.Tensor, reconstruct: bool = False) -> Located:
        """Crops ``(N, 3, S, S)`` (model space) -> :class:`Located`: points, confidence, the
        encoder's codes and the reconstruction (when asked for).

        The fast path that prediction and evaluation use: on the CPU the largest maps -- the
        last generator block's 64x64 features and the heatmaps (1.1 M floats per face for 68
        points) -- are made and decoded :data:`TAIL_FACES` faces at a time, so they stay in
        cache and their buffers are reused instead of mapping fresh memory for every batch.
        """
        z, h, mirrored, rec = self._trunks(x, reconstruct)
        pts, conf = [], []
        for hm in self._tails(h, mirrored):
            p, k = self.decode(hm)
            pts.append(p)
            conf.append(k)
        return Located(torch.cat(pts), torch.cat(conf), z, rec)

    @torch.no_grad()
    def read_crops(self, crops: list[np.ndarray], batch_size: int = 32, reconstruct: bool = True) -> list[Crop]:
        """RGB ``uint8`` crops ``(S, S, 3)`` -> what the network finds in each (:class:`Crop`),
        ``batch_size`` at a time on the model's device."""
        res = []
        for i in range(0, len(crops), batch_size):
            x = torch.stack([to_tensor(c) for c in crops[i : i + batch_size]]).to(self.device)
            x = x.contiguous(memory_format=memory_format(x.device))
            got = self.located(x, reconstruct=reconstruct)
            rec = got.reconstruction
            err = (rec.float() - x).abs().flatten(1).mean(1).mul(255).cpu().numpy() if rec is not None else None
            recs = to_uint8(rec) if rec is not None else None
            codes = got.codes.double().cpu().numpy()
            for j in range(x.shape[0]):
                res.append(Crop(got.points[j].double().cpu().numpy(), got.confidence[j].cpu().numpy(), codes[j],
                                float(err[j]) if err is not None else float("nan"),
                                recs[j] if recs is not None else None))
        return res

    @torch.no_grad()
    def predict_crops(
        self, x: torch.Tensor, reconstruct: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Crops ``(N, 3, S, S)`` (model space) -> points ``(N, K, 2)`` in crop pixels,
        confidence ``(N, K)``, heatmaps ``(N, K, H, H)``, reconstruction or None."""
        _, h, mirrored, rec = self._trunks(x, reconstruct)
        hm = torch.cat(list(self._tails(h, mirrored)))
        pts, conf = self.decode(hm)
        return pts, conf, hm, rec


def _folded(net: FabRec) -> FabRec:
    """An eval-mode copy of ``net`` with its BatchNorms folded (:func:`fabrec.nn.fold.fold_batchnorm`),
    in the inference layout of the device it is on."""
    from fabrec.nn.fold import fold_batchnorm

    return fold_batchnorm(net).to(memory_format=memory_format(next(net.parameters()).device))


def load_landmark_model(spec: str | Path, device: str | torch.device = "cpu",
                        fold_batchnorm: bool = False) -> LandmarkModel:
    """The landmark model of any spec (bundled name, ``.safetensors``, training ``.pt``; see
    :func:`fabrec.model_file.read_model_file`), in eval mode on ``device``, its BatchNorms folded
    if asked (:meth:`LandmarkModel.with_folded_batchnorm`). ``paper-256`` is the paper's 256-px
    architecture with random weights (seeded), for speed measurements."""
    if str(spec) == PAPER_256:
        torch.manual_seed(0)
        model = LandmarkModel(FabRec(256, 68).eval(), BUILTIN["68"])
        model = model.with_folded_batchnorm() if fold_batchnorm else model
    else:
        model = LandmarkModel.from_file(read_model_file(spec), fold_batchnorm)
    model.net.to(device)
    return model


def load_for_inference(spec: str | Path, options: InferenceOptions) -> LandmarkModel:
    """The landmark model of ``spec`` as ``options`` run it: its decoder (or the options'),
    precision, flip averaging and folded BatchNorm (:class:`~fabrec.inference_options.InferenceOptions`)."""
    model = load_landmark_model(spec, fold_batchnorm=options.fold_batchnorm)
    precision = resolve_precision(options.precision, resolve_device(options.device))
    return dataclasses.replace(model, decoder=options.decoder or model.decoder, precision=precision,
                               flip_average=options.flip)


@torch.no_grad()
def predict_dataset(
    model: LandmarkModel, ds: Dataset, batch: int = 32, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Run a model over a landmark dataset (items with ``image``, ``matrix``, ``norm``,
    ``index``; see :class:`~fabrec.datasets.landmarks.LandmarkDataset`) on the model's device.

    Returns points in original pixels ``(M, K, 2)``, confidence ``(M, K)``, normalisers
    ``(M,)`` and the dataset indices of the ``M`` readable samples. ``progress``: a bar.
    """
    from tqdm import tqdm

    from fabrec.datasets.landmarks import collate_landmarks

    was = model.net.training
    model.net.eval()
    dev = model.device
    pts_all, conf_all, norms, idx = [], [], [], []
    batches = DataLoader(ds, batch_size=batch, shuffle=False, collate_fn=collate_landmarks)
    for b, _ in tqdm(batches, desc="eval", unit="batch", disable=not progress, dynamic_ncols=True):
        if b is None:
            continue
        x = b["image"].to(dev).contiguous(memory_format=memory_format(dev))
        p, c, _ = model.locate(x)
        pts_all.append(crop_to_image(p.double().cpu().numpy(), b["matrix"].double().numpy()))
        conf_all.append(c.cpu().numpy())
        norms.append(b["norm"].double().numpy())
        idx += b["index"].tolist()
    model.net.train(was)
    if not pts_all:
        return np.zeros((0, 0, 2)), np.zeros((0, 0)), np.zeros(0), []
    return np.concatenate(pts_all), np.concatenate(conf_all), np.concatenate(norms), idx
