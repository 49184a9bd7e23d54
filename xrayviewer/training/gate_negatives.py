"""Images that are not frontal chest films, for fitting and testing the applicability gate.

Made from what installed packages ship (scikit-image's, scikit-learn's and matplotlib's sample pictures;
pydicom's CT, MR, ultrasound and nuclear-medicine test files), from generated pictures (text pages, charts,
screenshots, CT-like and MR-like slices, noise), and from our own chest films transformed into what a reader
must not be given (heavily cropped parts, rotated films). Every image keeps the split of what it was made
from: a source picture's or a film's split, so validation and test measure kinds of images the fitting never
saw. Deterministic for a seed.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

KINDS = ("photograph", "document", "cross-section", "cropped film", "rotated film", "other")
SPLIT_SHARES = (("train", 0.6), ("val", 0.2), ("test", 0.2))


@dataclass(frozen=True)
class Negative:
    """One generated image: where it is written, its kind, what it was made from and its split."""

    file: str  # relative to the output folder
    kind: str
    source: str
    split: str


def split_of(source: str) -> str:
    """A stable train/val/test assignment of a source name (60/20/20 by hash)."""
    value = int(hashlib.sha256(source.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    total = 0.0
    for split, share in SPLIT_SHARES:
        total += share
        if value < total:
            return split
    return "test"


# ---------------------------------------------------------------- sources shipped by installed packages


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Any image array → uint8 (grey or RGB), stretched between its 1st and 99th percentiles."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    low, high = np.percentile(a, [1, 99])
    return np.clip((a - low) / max(high - low, 1e-9) * 255, 0, 255).astype(np.uint8)


def package_pictures() -> dict[str, dict[str, np.ndarray]]:
    """kind → {source name: picture} from scikit-image, scikit-learn, matplotlib and pydicom."""
    import skimage.data
    from matplotlib import cbook
    from sklearn.datasets import load_sample_images

    photos: dict[str, np.ndarray] = {}
    for name in ("astronaut", "camera", "chelsea", "coffee", "rocket", "horse", "coins", "moon", "grass",
                 "gravel", "brick", "hubble_deep_field", "retina", "immunohistochemistry", "cell", "clock",
                 "colorwheel", "logo", "microaneurysms", "motorcycle", "cat"):
        loader = getattr(skimage.data, name, None)
        try:
            picture = loader() if loader is not None else None
        except Exception:  # a picture this scikit-image version would have to download
            picture = None
        if isinstance(picture, tuple):
            picture = picture[0]
        if picture is not None:
            photos[f"skimage-{name}"] = _to_uint8(picture)
    for index, picture in enumerate(load_sample_images().images):
        photos[f"sklearn-sample-{index}"] = picture
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        photos["mpl-grace_hopper"] = cv2.cvtColor(cv2.imdecode(np.frombuffer(fh.read(), np.uint8), 1),
                                                  cv2.COLOR_BGR2RGB)
    faces = skimage.data.lfw_subset()
    for index in range(0, len(faces), 40):  # 5 faces: portraits must not crowd out the other photographs
        photos[f"skimage-lfw-{index}"] = _to_uint8(faces[index])
    documents = {f"skimage-{n}": _to_uint8(getattr(skimage.data, n)()) for n in ("page", "text")}
    other = {"skimage-checkerboard": _to_uint8(skimage.data.checkerboard())}
    return {"photograph": photos, "document": documents, "cross-section": _medical_slices(), "other": other}


def _medical_slices() -> dict[str, np.ndarray]:
    """CT, MR, ultrasound, nuclear-medicine and phantom pictures from pydicom's and matplotlib's test data."""
    import gzip
    import warnings

    import pydicom
    import skimage.data
    from matplotlib import cbook
    from pydicom.data import get_testdata_file

    slices: dict[str, np.ndarray] = {"skimage-phantom": _to_uint8(skimage.data.shepp_logan_phantom())}
    for name in ("693_J2KI.dcm", "CT_small.dcm", "J2K_pixelrep_mismatch.dcm", "MR_small.dcm",
                 "examples_overlay.dcm", "JPEG2000.dcm", "examples_jpeg2k.dcm", "examples_rgb_color.dcm",
                 "examples_palette.dcm", "image_dfl.dcm", "examples_ybr_color.dcm"):
        path = get_testdata_file(name)
        if path is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            array = ds.pixel_array
            if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
                from pydicom.pixels.processing import apply_color_lut

                array = apply_color_lut(array, ds)
        if array.ndim == 4 or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
            array = array[len(array) // 2]  # the middle frame of a multi-frame file
        slices[f"pydicom-{name}"] = _to_uint8(array)
    with cbook.get_sample_data("s1045.ima.gz") as fh:
        data = fh.read()  # matplotlib unpacks .gz sample files itself (older versions did not)
    raw = np.frombuffer(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data, np.uint16)
    raw = raw.reshape(256, 256)
    slices["mpl-s1045-mr"] = _to_uint8(raw)
    return slices


# ---------------------------------------------------------------- generated pictures


_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN)
_WORDS = (
    "patient", "report", "findings", "impression", "chest", "radiograph", "normal", "lungs", "clear", "heart",
    "size", "within", "limits", "history", "cough", "fever", "date", "signed", "the", "of", "and", "with",
    "no", "acute", "process", "table", "figure", "results", "method", "value", "total", "mean", "study",
    "page", "window", "level", "export", "settings", "file", "open", "help",
)


def text_page(rng: np.random.Generator) -> np.ndarray:
    """A page of text lines (a report, a letter), sometimes with a table grid."""
    rows, cols = int(rng.integers(500, 1400)), int(rng.integers(400, 1000))
    page = np.full((rows, cols), int(rng.integers(200, 256)), np.uint8)
    ink = int(rng.integers(0, 90))
    font, scale = _FONTS[int(rng.integers(len(_FONTS)))], float(rng.uniform(0.4, 1.0))
    step = int(28 * scale + rng.integers(6, 18))
    for y in range(int(rng.integers(30, 80)), rows - 20, step):
        if rng.random() < 0.1:
            continue
        line = " ".join(rng.choice(_WORDS, int(rng.integers(3, 12))))
        cv2.putText(page, line, (int(rng.integers(10, 60)), y), font, scale, ink, 1, cv2.LINE_AA)
    if rng.random() < 0.4:
        top, left = int(rng.integers(rows // 3, rows // 2)), int(rng.integers(10, cols // 4))
        for r in range(int(rng.integers(3, 9))):
            cv2.line(page, (left, top + 30 * r), (cols - left, top + 30 * r), ink, 1)
        for c in np.linspace(left, cols - left, int(rng.integers(3, 7))).astype(int):
            cv2.line(page, (int(c), top), (int(c), top + 30 * 8), ink, 1)
    return page


def chart(rng: np.random.Generator) -> np.ndarray:
    """A matplotlib line, bar or scatter chart rendered to RGB pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(rng.uniform(4, 8), rng.uniform(3, 6)), dpi=80)
    axes = FigureCanvasAgg(figure).figure.add_subplot()
    x = np.arange(int(rng.integers(5, 40)))
    for _ in range(int(rng.integers(1, 4))):
        y = np.cumsum(rng.normal(0, 1, x.size))
        [axes.plot, axes.bar, axes.scatter][int(rng.integers(3))](x, y)
    axes.set_title(" ".join(rng.choice(_WORDS, 3)))
    axes.set_xlabel(str(rng.choice(_WORDS)))
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def screenshot(rng: np.random.Generator, film: np.ndarray | None) -> np.ndarray:
    """A desktop-application screenshot: panels, buttons, text, sometimes a small film in a viewport."""
    rows, cols = int(rng.integers(480, 1000)), int(rng.integers(640, 1600))
    dark = rng.random() < 0.5
    shot = np.full((rows, cols), 40 if dark else 235, np.uint8)
    for _ in range(int(rng.integers(4, 12))):
        top, left = int(rng.integers(0, rows - 40)), int(rng.integers(0, cols - 60))
        height, width = int(rng.integers(20, rows // 2)), int(rng.integers(40, cols // 2))
        shade = int(rng.integers(20, 90)) if dark else int(rng.integers(170, 250))
        cv2.rectangle(shot, (left, top), (left + width, top + height), shade, -1)
        cv2.putText(shot, " ".join(rng.choice(_WORDS, 2)), (left + 5, top + 18), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, 220 if dark else 20, 1, cv2.LINE_AA)
    if film is not None and rng.random() < 0.5:  # a viewer showing a film that fills at most a third
        side = int(min(rows, cols) * rng.uniform(0.25, 0.55))
        thumb = cv2.resize(film, (side, side), interpolation=cv2.INTER_AREA)
        top, left = int(rng.integers(0, rows - side)), int(rng.integers(0, cols - side))
        shot[top : top + side, left : left + side] = thumb
    return shot


def ct_like_slice(rng: np.random.Generator) -> np.ndarray:
    """An axial slice as CT shows the chest or a head as MR does: a body outline on black."""
    side = int(rng.integers(256, 513))
    picture = np.zeros((side, side), np.float32)
    centre = (side // 2 + int(rng.integers(-20, 20)), side // 2 + int(rng.integers(-20, 20)))
    axes = (int(side * rng.uniform(0.3, 0.46)), int(side * rng.uniform(0.22, 0.4)))
    cv2.ellipse(picture, centre, axes, float(rng.uniform(-10, 10)), 0, 360, float(rng.uniform(0.45, 0.7)), -1)
    if rng.random() < 0.6:  # chest: two dark lungs, a bright spine and heart
        for sign in (-1, 1):
            lung = (centre[0] + sign * axes[0] // 2, centre[1] - axes[1] // 8)
            cv2.ellipse(picture, lung, (axes[0] // 3, int(axes[1] * 0.6)), 0, 0, 360,
                        float(rng.uniform(0.0, 0.15)), -1)
        cv2.circle(picture, (centre[0], centre[1] + int(axes[1] * 0.7)), side // 22, 1.0, -1)
        cv2.circle(picture, (centre[0] + side // 20, centre[1]), side // 9, float(rng.uniform(0.55, 0.8)), -1)
    else:  # head: a bright skull ring around folded grey matter
        cv2.ellipse(picture, centre, axes, 0, 0, 360, 1.0, int(side * 0.02))
        texture = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), side / 60)
        inside = np.zeros_like(picture)
        cv2.ellipse(inside, centre, (int(axes[0] * 0.93), int(axes[1] * 0.93)), 0, 0, 360, 1.0, -1)
        picture = np.where(inside > 0, 0.3 + 0.6 * (texture - texture.min()) / np.ptp(texture), picture)
    picture += rng.normal(0, 0.03, picture.shape).astype(np.float32)
    return _to_uint8(cv2.GaussianBlur(picture, (0, 0), 1.0))


def pattern(rng: np.random.Generator) -> np.ndarray:
    """Noise, gradients, stripes, blobs or random shapes: nothing anatomical."""
    rows, cols = int(rng.integers(200, 900)), int(rng.integers(200, 900))
    kind = int(rng.integers(5))
    if kind == 0:
        picture = rng.normal(0.5, 0.2, (rows, cols))
    elif kind == 1:
        yy, xx = np.mgrid[0:rows, 0:cols]
        angle = rng.uniform(0, math.pi)
        picture = np.cos(angle) * xx / cols + np.sin(angle) * yy / rows
    elif kind == 2:
        yy, xx = np.mgrid[0:rows, 0:cols]
        picture = np.sin(xx / rng.uniform(3, 40) + yy / rng.uniform(3, 40))
    elif kind == 3:
        picture = cv2.GaussianBlur(rng.random((rows, cols)).astype(np.float32), (0, 0), rng.uniform(2, 30))
    else:
        picture = np.full((rows, cols), rng.uniform(0, 0.5), np.float32)
        for _ in range(int(rng.integers(3, 30))):
            centre = (int(rng.integers(cols)), int(rng.integers(rows)))
            cv2.circle(picture, centre, int(rng.integers(5, max(rows, cols) // 4)), float(rng.random()), -1)
    return _to_uint8(picture)


# ---------------------------------------------------------------- variations and our own films


def vary(picture: np.ndarray, rng: np.random.Generator, min_area: float = 0.4) -> np.ndarray:
    """A random crop (at least ``min_area`` of the picture), resize and, half the time, grey conversion."""
    rows, cols = picture.shape[:2]
    area = rng.uniform(min_area, 1.0)
    aspect = math.exp(rng.uniform(-0.4, 0.4))
    height = int(min(rows, max(8, rows * math.sqrt(area / aspect))))
    width = int(min(cols, max(8, cols * math.sqrt(area * aspect))))
    top, left = int(rng.integers(0, rows - height + 1)), int(rng.integers(0, cols - width + 1))
    out = picture[top : top + height, left : left + width]
    scale = rng.uniform(160, 900) / max(out.shape[:2])
    out = cv2.resize(out, (max(64, round(width * scale)), max(64, round(height * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if out.ndim == 3 and rng.random() < 0.5:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    return out


def film_part(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A heavily cropped part of a chest film: 6-25 % of its area (a lung, a corner, the shoulders)."""
    rows, cols = film.shape
    area = rng.uniform(0.06, 0.25)
    aspect = math.exp(rng.uniform(-0.6, 0.6))
    height = int(min(rows, rows * math.sqrt(area / aspect)))
    width = int(min(cols, cols * math.sqrt(area * aspect)))
    top, left = int(rng.integers(0, rows - height + 1)), int(rng.integers(0, cols - width + 1))
    part = film[top : top + height, left : left + width]
    scale = rng.uniform(256, 700) / max(part.shape)
    return cv2.resize(part, (max(64, round(part.shape[1] * scale)), max(64, round(part.shape[0] * scale))),
                      interpolation=cv2.INTER_LINEAR)


def rotated_film(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A film turned by 90°, 180° or 270°, or flipped upside down."""
    choice = int(rng.integers(4))
    if choice == 3:
        return film[::-1].copy()
    return np.ascontiguousarray(np.rot90(film, choice + 1))


# ---------------------------------------------------------------- writing the set


def _write(folder: Path, name: str, picture: np.ndarray, rng: np.random.Generator) -> str:
    """Write as PNG or JPEG (random quality); returns the file name."""
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR) if picture.ndim == 3 else picture
    if rng.random() < 0.5:
        file = f"{name}.png"
        cv2.imwrite(str(folder / file), bgr)
    else:
        file = f"{name}.jpg"
        cv2.imwrite(str(folder / file), bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 96))])
    return file


def generate(out: Path, films: dict[str, list[Path]], per_kind: int = 600, seed: int = 0) -> list[Negative]:
    """Write ``per_kind`` images of each kind into ``out`` (plus ``negatives.csv``); ``films`` maps a split
    to the chest films whose parts and rotations stand for that split."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pictures = package_pictures()
    made: list[Negative] = []

    def add(kind: str, source: str, split: str, picture: np.ndarray) -> None:
        name = f"{kind.replace(' ', '_')}-{len(made):05d}"
        made.append(Negative(_write(out, name, picture, rng), kind, source, split))

    film_cycle = _cycle_films(films, rng)
    for kind in KINDS:
        for index in range(per_kind):
            source, split, picture = _one(kind, index, pictures, film_cycle, rng)
            add(kind, source, split, picture)
    with open(out / "negatives.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "kind", "source", "split"])
        writer.writerows((n.file, n.kind, n.source, n.split) for n in made)
    return made


FilmStream = Iterator[tuple[str, str, np.ndarray]]  # (source, split, grey film)


def _read_grey(path: Path) -> np.ndarray | None:
    """A grey film, or None when unreadable; read by Python and decoded by OpenCV, since cv2.imread crashes
    (SIGSEGV) on a file name that is not valid UTF-8."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None


def _cycle_films(films: dict[str, list[Path]], rng: np.random.Generator) -> FilmStream:
    """Endless (source, split, grey film) in a seeded order, splits in their shares."""
    pool = [(split, path) for split, paths in films.items() for path in paths]
    order = rng.permutation(len(pool))
    position = 0
    while True:
        split, path = pool[int(order[position % len(pool)])]
        position += 1
        film = _read_grey(path)
        if film is not None and min(film.shape) >= 64:
            yield path.name, split, film


def _one(kind: str, index: int, pictures: dict[str, dict[str, np.ndarray]], films: FilmStream,
         rng: np.random.Generator) -> tuple[str, str, np.ndarray]:
    """(source, split, picture) of the ``index``-th image of ``kind``."""
    generated: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
        "document": lambda r: [text_page, chart][int(r.integers(2))](r),
        "cross-section": ct_like_slice,
        "other": pattern,
    }
    if kind in ("cropped film", "rotated film"):
        source, split, film = next(films)
        return source, split, (film_part if kind == "cropped film" else rotated_film)(film, rng)
    if kind == "document" and index % 3 == 2:  # screenshots, a third of them with a film in a viewport
        source, _, film = next(films)
        return f"screenshot-{index}", split_of(f"screenshot-{index}"), screenshot(rng, film)
    shipped = pictures.get(kind, {})
    share = {"photograph": 1, "cross-section": 2, "document": 4, "other": 8}[kind]  # 1 in N from packages
    if shipped and index % share == 0:
        source = sorted(shipped)[int(rng.integers(len(shipped)))]
        return source, split_of(source), vary(shipped[source], rng)
    source = f"generated-{kind}-{index}"
    return source, split_of(source), vary(generated[kind](rng), rng, min_area=0.7)
