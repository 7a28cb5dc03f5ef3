"""The dlib face matcher (the ``faces`` extra) on real photos; skipped without the extra.

The photos in ``faces/`` are public domain: ``astronaut.jpg`` is NASA's portrait of Eileen
Collins (scikit-image's ``astronaut`` sample), ``grace_hopper.jpg`` the US Navy's portrait of
Grace Hopper (matplotlib's sample data, from Wikimedia Commons), both cropped and scaled down.
"""

from __future__ import annotations

import importlib.util
import io
import time
from pathlib import Path
from typing import Any

import pytest

from dancu.core.settings import Settings
from dancu.identity.faces import (
    DESCRIPTOR,
    LANDMARKS,
    DlibFaceMatcher,
    NoUsableFace,
    to_similarity,
)
from dancu.identity.ports import FaceMatcher, synthetic_portrait

pytest.importorskip("dlib", reason="the 'faces' extra is not installed")
Image = pytest.importorskip("PIL.Image", reason="the 'faces' extra is not installed")
ImageEnhance = pytest.importorskip("PIL.ImageEnhance")
if importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("the 'faces' extra is not installed", allow_module_level=True)

PHOTOS = Path(__file__).parent / "faces"
THRESHOLD = Settings.model_fields["face_threshold"].default


@pytest.fixture(scope="module")
def matcher() -> DlibFaceMatcher:
    faces = DlibFaceMatcher()
    faces.load()
    return faces


def photo(name: str) -> Any:
    return Image.open(PHOTOS / f"{name}.jpg").convert("RGB")


def encode(picture: Any, fmt: str = "JPEG", **options: Any) -> bytes:
    out = io.BytesIO()
    picture.save(out, fmt, **options)
    return out.getvalue()


def sideways_with_exif(picture: Any) -> bytes:
    """What a phone writes: the pixels as the sensor saw them (here turned a quarter) and an
    EXIF orientation saying how to show them upright (6: rotate 90° clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(picture.transpose(Image.Transpose.ROTATE_90), exif=exif)


ASTRONAUT_VARIANTS = {
    "smaller": lambda p: encode(p.resize((160, 180))),
    "larger, 12 megapixels": lambda p: encode(p.resize((2900, 3264))),
    "rotated 8 degrees": lambda p: encode(p.rotate(8, resample=Image.Resampling.BICUBIC)),
    "brighter": lambda p: encode(ImageEnhance.Brightness(p).enhance(1.35)),
    "darker": lambda p: encode(ImageEnhance.Brightness(p).enhance(0.6)),
    "low-quality JPEG": lambda p: encode(p, quality=25),
    "grey PNG": lambda p: encode(p.convert("L"), "PNG"),
    "JPEG 2000, as on a card's chip": lambda p: encode(p, "JPEG2000", quality_layers=[40]),
    "CMYK JPEG": lambda p: encode(p.convert("CMYK")),
    "mirrored": lambda p: encode(p.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "sideways with EXIF orientation": sideways_with_exif,
}


def test_it_is_a_face_matcher(matcher: DlibFaceMatcher) -> None:
    port: FaceMatcher = matcher
    portrait = encode(photo("astronaut"))
    assert port.similarity(portrait, portrait) == 1.0


@pytest.mark.parametrize("variant", ASTRONAUT_VARIANTS)
def test_the_same_face_matches(matcher: DlibFaceMatcher, variant: str) -> None:
    portrait = encode(photo("astronaut"))
    selfie = ASTRONAUT_VARIANTS[variant](photo("astronaut"))
    assert matcher.similarity(selfie, portrait) >= THRESHOLD + 0.05


@pytest.mark.parametrize("variant", ["smaller", "low-quality JPEG", "mirrored"])
def test_a_different_face_does_not_match(matcher: DlibFaceMatcher, variant: str) -> None:
    selfie = ASTRONAUT_VARIANTS[variant](photo("astronaut"))
    portrait = encode(photo("grace_hopper"))
    assert matcher.similarity(selfie, portrait) < THRESHOLD - 0.03
    assert matcher.similarity(portrait, selfie) < THRESHOLD - 0.03


def test_the_similarity_scale() -> None:
    assert to_similarity(0.0) == 1.0
    assert to_similarity(0.5) == pytest.approx(THRESHOLD)
    assert to_similarity(0.6) < THRESHOLD
    assert to_similarity(3.0) == 0.0


def noise() -> Any:
    import numpy as np

    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    "picture",
    [lambda: Image.new("RGB", (400, 400), (128, 128, 128)), noise],
    ids=["blank", "noise"],
)
def test_no_face_is_refused(matcher: DlibFaceMatcher, picture: Any) -> None:
    portrait = encode(photo("astronaut"))
    with pytest.raises(NoUsableFace, match="no face was found in the selfie: take it again") as e:
        matcher.similarity(encode(picture()), portrait)
    assert e.value.image == "selfie"
    with pytest.raises(NoUsableFace, match="the portrait on record") as e:
        matcher.similarity(portrait, encode(picture()))
    assert e.value.image == "portrait"


def test_two_faces_are_refused(matcher: DlibFaceMatcher) -> None:
    both = Image.new("RGB", (520, 320), (255, 255, 255))
    both.paste(photo("astronaut"), (0, 0))
    both.paste(photo("grace_hopper"), (264, 0))
    with pytest.raises(NoUsableFace, match="the selfie shows 2 faces"):
        matcher.similarity(encode(both), encode(photo("astronaut")))


@pytest.mark.parametrize(
    "data",
    [
        b"not a picture",
        synthetic_portrait("key", "001234567890"),  # the development stand-in's "image"
        encode(photo("astronaut"), "GIF"),  # not a format taken
    ],
    ids=["text", "synthetic", "gif"],
)
def test_what_is_not_a_photo_is_refused(matcher: DlibFaceMatcher, data: bytes) -> None:
    with pytest.raises(NoUsableFace, match="the selfie is not a readable JPEG or PNG photo"):
        matcher.similarity(data, encode(photo("astronaut")))


def test_a_truncated_photo_is_refused(matcher: DlibFaceMatcher) -> None:
    data = encode(photo("astronaut"))
    with pytest.raises(NoUsableFace, match="not a readable"):
        matcher.similarity(data[: len(data) // 2], data)


def test_a_comparison_takes_well_under_a_second(matcher: DlibFaceMatcher) -> None:
    portrait = encode(photo("astronaut"))
    selfie = ASTRONAUT_VARIANTS["larger, 12 megapixels"](photo("astronaut"))
    start = time.process_time()
    matcher.similarity(selfie, portrait)
    assert time.process_time() - start < 1.5  # ~0.3 s on one core here


def test_a_model_file_that_is_not_the_expected_one_is_refused(tmp_path: Path) -> None:
    for name in (LANDMARKS[0], DESCRIPTOR[0]):
        (tmp_path / name).write_bytes(b"something else")
    with pytest.raises(RuntimeError, match="not the expected file"):
        DlibFaceMatcher(tmp_path).load()
    with pytest.raises(RuntimeError, match="is missing"):
        DlibFaceMatcher(tmp_path / "nowhere").load()


def test_self_registration_with_the_dlib_matcher_and_a_portrait_folder(
    engine: Any, tmp_path: Path
) -> None:
    """The configured pipeline (``DANCU_FACE_MATCHER=dlib``, ``DANCU_PORTRAIT_DIR``) on both
    databases: a re-taken photo of the card holder passes, someone else's face is refused, a
    photo without a face gets its own coded refusal."""
    from dancu.bootstrap import Container
    from dancu.core.errors import DancuError
    from dancu.demo import ba_dinh_family
    from dancu.identity import schemas as s

    portraits = tmp_path / "portraits"
    portraits.mkdir()
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        secret_key="test-secret-key",
        face_matcher="dlib",
        portrait_dir=portraits,
    )
    with Container(settings) as container:
        family = ba_dinh_family(container.registry)
        father, mother = family["father"], family["mother"]
        (portraits / f"{father}.jpg").write_bytes((PHOTOS / "astronaut.jpg").read_bytes())
        selfie = photo("astronaut").resize((300, 300)).rotate(5)
        cases = {
            "face-mismatch": (father, encode(photo("grace_hopper"))),
            "face-unreadable": (father, encode(Image.new("RGB", (200, 200), "white"))),
            "no-portrait": (mother, encode(selfie)),
        }
        for code, (pid, image) in cases.items():
            with pytest.raises(DancuError) as refused:
                container.identity.start_registration(
                    s.Registration(personal_id=pid, phone="0912345678", selfie=image)
                )
            assert refused.value.code == code
        challenge = container.identity.start_registration(
            s.Registration(personal_id=father, phone="0912345678", selfie=encode(selfie))
        )
        assert challenge.phone_hint.endswith("678")
