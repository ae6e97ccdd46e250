"""Synthetic videos with exact object masks, to measure segmentation against ground truth.

A clip is a scene seen through a moving camera, with one or two textured objects of
irregular outline moving over it on their own smooth paths. Two scene sources share the
camera and object code: ``scene="texture"`` draws a periodic, natural-looking fractal
texture for the scene and the objects; ``scene="photo"`` cuts the scene from one real
photograph and each object from another (Debian ``opencv-doc``'s sample images), so
that flow meets real edges, flat areas and fine detail. Everything is drawn with hard
edges, so ``masks`` is the exact set of object pixels of every frame before noise and
JPEG compression are added.

Geometry is tuned at 240 x 320 and scales with the short side ``S`` of the frame:

- objects never enter the border that the pipeline zeroes (``border_fraction * S``,
  12.5 %), nor the pruning band (``border_band * S``, 5 %), which lies inside it;
- one object covers about 5-10 % of the frame, two about 3-5.5 % each; zoom scales
  them by up to 1/0.85 in each direction (area x 1.38), and an object too large for its
  room is shrunk (measured over 25 seeds: 5-14.5 % of the frame in total);
- every object moves relative to the scene by about 2.5-8 px/frame (times ``S / 240``):
  on an ellipse at 3-8 px/frame (static, zoom and shake cameras; zoom adds or takes up
  to ~1 px/frame) or, under a pan of 3.5-4.5 px/frame, drifting by at most 1 px/frame
  in the frame while the camera tracks it.

``write_video`` and ``write_frames`` put clips on disk the way real inputs arrive.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np

from fastunlc.config import REFERENCE
from fastunlc.errors import InputError

logger = logging.getLogger(__name__)

CameraMode = Literal["static", "pan", "zoom", "shake"]
CAMERA_MODES: tuple[str, ...] = ("static", "pan", "zoom", "shake")
SceneSource = Literal["texture", "photo"]
SCENE_SOURCES: tuple[str, ...] = ("texture", "photo")

PHOTO_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
"""Debian ``opencv-doc``'s sample images (``apt-get install opencv-doc``): ``scene="photo"``."""
# Colour photographs with a wide view (streets, rooms, desks, scenes), for the backdrop.
BACKGROUND_PHOTOS = ("building.jpg", "home.jpg", "messi5.jpg", "board.jpg", "stuff.jpg",
                     "aero1.jpg", "leuvenA.jpg", "graf1.png", "rubberwhale1.png", "fruits.jpg")
# Close-ups of single things, for the objects; none is also a backdrop, so an object is
# never cut from its own background.
OBJECT_PHOTOS = ("baboon.jpg", "orange.jpg", "apple.jpg", "butterfly.jpg", "squirrel_cls.jpg",
                 "smarties.png", "HappyFish.jpg", "chicky_512.png")

# Scales below are in pixels at a short side of 240; ``k = min(h, w) / 240`` rescales them.
_PAN_SPEED = (3.5, 4.5)  # camera pan, px/frame
_TRACKED_DRIFT = 1.0  # under a pan, the object's speed in the frame is at most this, px/frame
_MIN_OBJECT_SPEED, _MAX_OBJECT_SPEED = 3.0, 8.0  # ellipse paths: speed range, px/frame
_MIN_ROOM = 12.0  # smallest ellipse semi-axis, px: objects shrink to leave this much room
_SHAKE_STD, _SHAKE_MAX = 1.5, 4.5  # camera jitter, px
_ZOOM_DEPTH = 0.15  # the camera's field of view shrinks to 85 % and back
_MIN_SIDE = 64  # smaller frames leave no room between the zeroed borders


@dataclass(frozen=True, eq=False)
class SyntheticClip:
    """A synthetic video with its exact object masks.

    Attributes
    ----------
    frames : (n, h, w, 3) uint8 ndarray
        RGB frames after noise and (optional) JPEG compression.
    masks : (n, h, w) bool ndarray
        Exact union of the object masks of every frame.
    params : dict
        How the clip was made: the arguments of :func:`make_clip` (``n_frames``,
        ``size``, ``camera``, ``n_objects``, ``noise_std``, ``jpeg_quality``, ``seed``,
        ``scene``), ``photos`` (file names of the backdrop then of each object's photo;
        empty for ``scene="texture"``) and the geometry: ``camera_matrices`` (n, 2, 3)
        float64 mapping frame pixel coordinates ``(x, y, 1)`` to scene (texture or
        backdrop) pixel coordinates; ``zoom`` (n,) the
        scene-per-frame scale (1 = no zoom, < 1 = zoomed in); ``pan_velocity`` (2,)
        scene px/frame; ``object_centres`` (n_objects, n, 2) float64 frame coordinates
        (x, y); ``object_radii`` (n_objects,) mean outline radius at zoom 1, px;
        ``area_fraction`` (n,) float64 mask area / frame area.
    """

    frames: np.ndarray
    masks: np.ndarray
    params: dict[str, Any]


def make_clip(
    n_frames: int = 40,
    size: tuple[int, int] = (240, 320),
    *,
    camera: CameraMode = "static",
    n_objects: int = 1,
    noise_std: float = 2.0,
    jpeg_quality: int | None = 90,
    seed: int = 0,
    scene: SceneSource = "texture",
    photo_dir: str | os.PathLike[str] = PHOTO_DIR,
) -> SyntheticClip:
    """Render a synthetic clip with exact masks.

    Parameters
    ----------
    n_frames : int
        Number of frames, >= 1.
    size : (int, int)
        Frame height and width in pixels, each >= 64.
    camera : {"static", "pan", "zoom", "shake"}
        ``static``: fixed camera. ``pan``: steady 3.5-4.5 px/frame (at 240 x 320) in a
        random direction. ``zoom``: the field of view shrinks smoothly to 85 % and back
        over the clip (or widens first, at random). ``shake``: independent jitter of
        1.5 px standard deviation per frame (clipped at 4.5 px).
    n_objects : {1, 2}
        Number of objects; two objects keep to opposite halves of the frame.
    noise_std : float
        Standard deviation of the additive Gaussian noise, in grey levels (>= 0).
    jpeg_quality : int or None
        JPEG quality (1-100) each frame is compressed with, or None for no compression.
    seed : int
        Seed of every random choice; equal arguments give identical clips.
    scene : {"texture", "photo"}
        ``texture``: fractal colour textures, periodic, so the camera can travel anywhere.
        ``photo``: the backdrop is a crop of one of :data:`BACKGROUND_PHOTOS`, scaled so
        that it just covers everything the camera sees over the clip; each object is a
        square crop of one of :data:`OBJECT_PHOTOS` (two objects: two photos), cut with
        the same irregular outlines. Camera, objects, noise and JPEG as for ``texture``.
    photo_dir : str or PathLike
        Folder holding the photos (``scene="photo"`` only).

    Returns
    -------
    SyntheticClip
        ``frames`` (n_frames, h, w, 3) uint8, ``masks`` (n_frames, h, w) bool, ``params``.

    Raises
    ------
    ValueError
        On an unknown camera mode or scene source, or an out-of-range argument.
    InputError
        ``scene="photo"`` and ``photo_dir`` is missing or a photo cannot be read.

    Examples
    --------
    >>> clip = make_clip(10, camera="pan", seed=3)
    >>> clip.frames.shape, clip.masks.dtype
    ((10, 240, 320, 3), dtype('bool'))
    """
    h, w = (int(v) for v in size)
    if camera not in CAMERA_MODES:
        raise ValueError(f"camera must be one of {CAMERA_MODES}, got {camera!r}")
    if scene not in SCENE_SOURCES:
        raise ValueError(f"scene must be one of {SCENE_SOURCES}, got {scene!r}")
    if n_objects not in (1, 2):
        raise ValueError(f"n_objects must be 1 or 2, got {n_objects!r}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if min(h, w) < _MIN_SIDE:
        raise ValueError(f"size must be at least {_MIN_SIDE} x {_MIN_SIDE}, got {h} x {w}")
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be None or in 1..100, got {jpeg_quality}")

    rng = np.random.default_rng(seed)
    k = min(h, w) / 240.0
    cam = _camera_path(rng, camera, n_frames, (h, w), k)
    if scene == "texture":
        hue = rng.uniform(0, 2 * np.pi)
        backdrop = _textured_rgb(rng, (h + h // 2, w + w // 2), hue, chroma=18.0, beta=2.0)
        # The texture is periodic, so BORDER_WRAP lets the camera travel anywhere.
        wrap = cv2.BORDER_WRAP
        photos: list[str] = []
    else:
        photos = [str(rng.choice(BACKGROUND_PHOTOS)),
                  *(str(p) for p in rng.choice(OBJECT_PHOTOS, n_objects, replace=False))]
        backdrop, cam["matrices"] = _photo_backdrop(
            rng, _read_photo(Path(photo_dir), photos[0]), cam["matrices"], (h, w))
        # The backdrop covers every frame; the border rule only meets rounding.
        wrap = cv2.BORDER_REFLECT_101

    frames = np.empty((n_frames, h, w, 3), np.float32)
    for t in range(n_frames):
        # WARP_INVERSE_MAP: the matrix maps output (frame) pixels to source (scene) pixels.
        frames[t] = cv2.warpAffine(backdrop, cam["matrices"][t], (w, h),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=wrap)
    masks = np.zeros((n_frames, h, w), bool)

    objects = _plan_objects(rng, n_objects, n_frames, (h, w), k, camera, cam)
    for i, obj in enumerate(objects):
        side = int(2 * obj["radius"] * obj["shape_max"]) + 8
        if scene == "texture":
            # Object hues sit opposite the scene's: objects differ in colour and texture.
            obj_hue = hue + np.pi + (-0.6 if i == 0 else 0.6) * rng.uniform(0.5, 1.0)
            sprite = _textured_rgb(rng, (side, side), obj_hue, chroma=40.0, beta=1.6)
        else:
            sprite = _photo_crop(rng, _read_photo(Path(photo_dir), photos[1 + i]),
                                 (side, side))
        for t in range(n_frames):
            _paint_object(frames[t], masks[t], sprite, obj, t)

    if noise_std > 0:
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(noise_std)
    out = np.rint(np.clip(frames, 0, 255)).astype(np.uint8)
    if jpeg_quality is not None:
        for t in range(n_frames):
            out[t] = _jpeg_roundtrip(out[t], jpeg_quality)

    params: dict[str, Any] = {
        "n_frames": n_frames, "size": (h, w), "camera": camera, "n_objects": n_objects,
        "noise_std": float(noise_std), "jpeg_quality": jpeg_quality, "seed": seed,
        "scene": scene, "photos": photos,
        "camera_matrices": cam["matrices"], "zoom": cam["zoom"],
        "pan_velocity": cam["pan_velocity"],
        "object_centres": np.stack([obj["centres"] for obj in objects]),
        "object_radii": np.array([obj["radius"] for obj in objects]),
        "area_fraction": masks.mean(axis=(1, 2)),
    }
    return SyntheticClip(frames=out, masks=masks, params=params)


def _camera_path(rng: np.random.Generator, camera: str, n: int, size: tuple[int, int],
                 k: float) -> dict[str, np.ndarray]:
    """Frame-to-scene affine maps ``X = s_t (x - c) + c + o_t`` of every frame."""
    h, w = size
    t = np.arange(n, dtype=np.float64)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    origin = rng.uniform(0, 1, 2) * np.array([w, h])
    zoom = np.ones(n)
    jitter = np.zeros((n, 2))
    velocity = np.zeros(2)
    if camera == "pan":
        angle = rng.uniform(0, 2 * np.pi)
        velocity = rng.uniform(*_PAN_SPEED) * k * np.array([np.cos(angle), np.sin(angle)])
    elif camera == "zoom":
        bump = (1 - np.cos(2 * np.pi * t / max(n - 1, 1))) / 2  # 0 -> 1 -> 0, smooth
        zoom = 1 - _ZOOM_DEPTH * bump if rng.random() < 0.5 else 1 - _ZOOM_DEPTH * (1 - bump)
    elif camera == "shake":
        jitter = np.clip(rng.normal(0, _SHAKE_STD * k, (n, 2)), -_SHAKE_MAX * k, _SHAKE_MAX * k)
    offset = origin + velocity * t[:, None] + jitter
    matrices = np.zeros((n, 2, 3))
    matrices[:, 0, 0] = matrices[:, 1, 1] = zoom
    matrices[:, :, 2] = (1 - zoom)[:, None] * centre + offset
    return {"matrices": matrices, "zoom": zoom, "jitter": jitter, "pan_velocity": velocity}


def _plan_objects(rng: np.random.Generator, n_objects: int, n: int, size: tuple[int, int],
                  k: float, camera: str, cam: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Outline, size and per-frame centre, scale and angle of each object."""
    h, w = size
    short = min(h, w)
    # Object pixels stay 2 px clear of the border the pipeline zeroes (the 5 % pruning
    # band is inside it).
    border = int(short * REFERENCE.border_fraction) + 2
    x0, x1, y0, y1 = border, w - 1 - border, border, h - 1 - border
    if n_objects == 1:
        boxes = [(x0, x1, y0, y1)]
    elif w >= h:
        mid = (x0 + x1) / 2
        boxes = [(x0, mid - 2, y0, y1), (mid + 2, x1, y0, y1)]
    else:
        mid = (y0 + y1) / 2
        boxes = [(x0, x1, y0, mid - 2), (x0, x1, mid + 2, y1)]
    area_range = (0.05, 0.10) if n_objects == 1 else (0.03, 0.055)

    scale = 1.0 / cam["zoom"]  # objects live in the scene: zooming in enlarges them
    slack = float(np.abs(cam["jitter"]).max()) + 1.0
    t = np.arange(n, dtype=np.float64)
    objects = []
    for bx0, bx1, by0, by1 in boxes:
        # Irregular outline r(phi) = radius * (1 + sum_k a_k cos(k phi + p_k)), k = 2..5.
        orders = np.arange(2, 6)
        coef = rng.normal(0, 1, orders.size) * 0.18 / np.sqrt(orders)
        coef *= min(1.0, 0.45 / np.abs(coef).sum())  # keeps r >= 0.55 * radius: one blob
        phases = rng.uniform(0, 2 * np.pi, orders.size)
        phi = np.linspace(0, 2 * np.pi, 1440, endpoint=False)
        shape_max = float((1 + coef @ np.cos(np.outer(orders, phi) + phases[:, None])).max())
        # Area of the outline is pi * radius^2 * (1 + sum a_k^2 / 2).
        area = rng.uniform(*area_range) * h * w
        radius = np.sqrt(area / (np.pi * (1 + 0.5 * np.sum(coef**2))))
        half_w, half_h = (bx1 - bx0) / 2, (by1 - by0) / 2
        fit = (min(half_w, half_h) - _MIN_ROOM * k - slack) / (shape_max * scale.max())
        radius = min(radius, fit)
        extent = radius * shape_max * scale.max() + slack
        room_x, room_y = half_w - extent, half_h - extent
        centre = np.array([(bx0 + bx1) / 2, (by0 + by1) / 2])

        omega = 2 * np.pi / rng.uniform(30, 50)  # rad/frame along the ellipse
        if camera == "pan":
            # The camera tracks the object: it drifts slowly in the frame, so its motion
            # relative to the scene stays close to the pan velocity.
            ax = min(room_x, _TRACKED_DRIFT * k / omega)
            ay = min(room_y, _TRACKED_DRIFT * k / omega)
        else:
            ax, ay = room_x * rng.uniform(0.8, 1.0), room_y * rng.uniform(0.8, 1.0)
            # Speed along the ellipse runs from omega * min(ax, ay) to omega * max(ax, ay):
            # an aspect ratio of at most 2.5 < 8 / 3 leaves an omega that keeps it within
            # [_MIN_OBJECT_SPEED, _MAX_OBJECT_SPEED].
            ax, ay = min(ax, 2.5 * ay), min(ay, 2.5 * ax)
            omega = min(max(omega, _MIN_OBJECT_SPEED * k / min(ax, ay)),
                        _MAX_OBJECT_SPEED * k / max(ax, ay))
        start = rng.uniform(0, 2 * np.pi)
        turn = rng.choice([-1.0, 1.0])
        path = centre + np.stack([ax * np.cos(omega * t + start),
                                  turn * ay * np.sin(omega * t + start)], axis=1)
        # Shake moves the camera, not the object: its smooth scene path appears jittered.
        centres = path - cam["jitter"]
        objects.append({
            "radius": float(radius), "shape_max": shape_max, "coef": coef, "orders": orders,
            "phases": phases, "centres": centres, "scale": scale,
            "angle": rng.uniform(0, 2 * np.pi) + rng.uniform(-0.03, 0.03) * t,
        })
    if min(obj["radius"] for obj in objects) < 4:
        raise ValueError(f"size {h} x {w} leaves no room for {n_objects} object(s)")
    return objects


def _paint_object(frame: np.ndarray, mask: np.ndarray, sprite: np.ndarray,
                  obj: dict[str, Any], t: int) -> None:
    """Draw object ``obj`` at frame ``t`` into ``frame`` (h, w, 3) float32 and ``mask``."""
    h, w = mask.shape
    cx, cy = obj["centres"][t]
    scale, angle = obj["scale"][t], obj["angle"][t]
    reach = obj["radius"] * obj["shape_max"] * scale + 1
    xa, xb = max(int(cx - reach), 0), min(int(cx + reach) + 2, w)
    ya, yb = max(int(cy - reach), 0), min(int(cy + reach) + 2, h)
    dx = np.arange(xa, xb, dtype=np.float64)[None, :] - cx
    dy = np.arange(ya, yb, dtype=np.float64)[:, None] - cy
    # Object-local coordinates: undo the rotation and the zoom.
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    u = (cos_a * dx + sin_a * dy) / scale
    v = (-sin_a * dx + cos_a * dy) / scale
    phi = np.arctan2(v, u)
    outline = np.ones_like(phi)
    for a, m, p in zip(obj["coef"], obj["orders"], obj["phases"], strict=True):
        outline += a * np.cos(m * phi + p)
    inside = np.hypot(u, v) <= obj["radius"] * outline
    half = sprite.shape[0] / 2
    patch = cv2.remap(sprite, (u + half).astype(np.float32), (v + half).astype(np.float32),
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    frame[ya:yb, xa:xb][inside] = patch[inside]
    mask[ya:yb, xa:xb] |= inside


def _photo_backdrop(rng: np.random.Generator, photo: np.ndarray, matrices: np.ndarray,
                    size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A crop of ``photo`` covering every frame of the camera path, as the scene.

    Returns the backdrop (H, W, 3) float32 RGB in [0, 255], one scene pixel per backdrop
    pixel, and ``matrices`` (n, 2, 3) shifted so that they map frame pixels into it.
    """
    h, w = size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
    seen = np.einsum("nij,cj->nci", matrices, corners).reshape(-1, 2)
    low = np.floor(seen.min(axis=0)) - 2  # 2 px for the bilinear taps and rounding
    extent = np.ceil(seen.max(axis=0)) + 2 - low + 1
    backdrop = _photo_crop(rng, photo, (int(extent[1]), int(extent[0])))
    shifted = matrices.copy()
    shifted[:, :, 2] -= low
    return backdrop, shifted


def _photo_crop(rng: np.random.Generator, photo: np.ndarray,
                shape: tuple[int, int]) -> np.ndarray:
    """A random crop of ``photo`` with the aspect of ``shape`` (h, w), resized to it.

    The crop spans 60-100 % of the largest such crop, at a random place; shrinking uses
    area averaging (no aliasing), enlarging bicubic. Returns (h, w, 3) float32 in [0, 255].
    """
    out_h, out_w = shape
    ph, pw = photo.shape[:2]
    fit = min(ph / out_h, pw / out_w) * rng.uniform(0.6, 1.0)
    crop_h, crop_w = max(int(out_h * fit), 1), max(int(out_w * fit), 1)
    y = int(rng.integers(0, ph - crop_h + 1))
    x = int(rng.integers(0, pw - crop_w + 1))
    interpolation = cv2.INTER_AREA if fit >= 1 else cv2.INTER_CUBIC
    crop = cv2.resize(photo[y:y + crop_h, x:x + crop_w], (out_w, out_h),
                      interpolation=interpolation)
    return np.clip(crop, 0, 255)


@functools.cache
def _read_photo(folder: Path, name: str) -> np.ndarray:
    """Photo ``folder / name`` as (h, w, 3) float32 RGB in [0, 255], read-only, cached."""
    if not folder.is_dir():
        raise InputError(folder, "folder of sample photos missing; scene='photo' needs "
                         "OpenCV's sample images (apt-get install opencv-doc) or a photo_dir")
    path = folder / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(path, "missing or not a readable image; scene='photo' needs "
                         "OpenCV's sample images (apt-get install opencv-doc)")
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)
    rgb.flags.writeable = False
    return rgb


def _fractal_noise(rng: np.random.Generator, shape: tuple[int, int], channels: int,
                   beta: float) -> np.ndarray:
    """Periodic noise (h, w, channels) float32, zero mean, unit std, power ~ 1/f^beta.

    Natural images have beta near 2: structure at every scale. Frequencies below
    1/64 cycles/px are flattened so that no single gradient spans the whole frame.
    """
    h, w = shape
    freq = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    amplitude = (freq**2 + (1 / 64) ** 2) ** (-beta / 4)
    amplitude[0, 0] = 0.0
    white = rng.standard_normal((channels, h, w))
    noise = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(h, w))
    noise /= noise.std(axis=(1, 2), keepdims=True)
    return np.ascontiguousarray(noise.transpose(1, 2, 0), dtype=np.float32)


def _textured_rgb(rng: np.random.Generator, shape: tuple[int, int], hue: float,
                  chroma: float, beta: float) -> np.ndarray:
    """Periodic colour texture (h, w, 3) float32 RGB in [0, 255] around a CIELAB hue."""
    noise = _fractal_noise(rng, shape, 3, beta)
    lab = np.empty_like(noise)
    lab[..., 0] = np.clip(rng.uniform(45, 65) + 13 * noise[..., 0], 5, 95)
    lab[..., 1] = chroma * np.cos(hue) + 7 * noise[..., 1]
    lab[..., 2] = chroma * np.sin(hue) + 7 * noise[..., 2]
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)  # float input: L in [0, 100], RGB in [0, 1]
    return np.clip(rgb, 0, 1) * np.float32(255)


def _jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    """Compress an RGB uint8 frame to JPEG and decode it again."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG frame")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not frames.size:
        raise ValueError("frames must be a non-empty uint8 array of shape (n, h, w, 3), got "
                         f"{frames.dtype} {frames.shape}")
    return frames


def write_video(path: str | os.PathLike[str], frames: np.ndarray,
                fps: float = 25) -> Path:
    """Write RGB frames to an .mp4 or .avi file.

    ``.mp4`` uses H.264 (libx264, CRF 12: visually lossless) when PyAV has it, else
    MPEG-4 part 2; ``.avi`` uses MPEG-4 part 2 at quantiser 2. Both store yuv420p, whose
    chroma planes are half-size, so both sides must be even: an odd height or width is
    padded by repeating the last row or column, and the file then holds
    ``(h + h % 2, w + w % 2)`` frames. The file is written under a temporary name in the
    same folder and moved into place, so ``path`` never holds a partial video.

    Parameters
    ----------
    path : str or PathLike
        Destination; its suffix (``.mp4`` or ``.avi``) picks the container.
    frames : (n, h, w, 3) uint8 ndarray
        RGB frames.
    fps : float
        Frame rate in frames per second (> 0).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        On another suffix, a bad frame array or a non-positive frame rate.
    """
    frames = _check_frames(frames)
    path = Path(path)
    container_format = {".mp4": "mp4", ".avi": "avi"}.get(path.suffix.lower())
    if container_format is None:
        raise ValueError(f"{path}: write_video writes .mp4 or .avi, got {path.suffix!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    n, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    codec = "libx264" if container_format == "mp4" and _has_encoder("libx264") else "mpeg4"
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.partial{path.suffix}")
    try:
        with av.open(str(tmp), mode="w", format=container_format) as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": "12"}
            else:
                # Fixed quantiser 2, ffmpeg's ``-q:v 2`` (global_quality is in lambda
                # units: FF_QP2LAMBDA = 118 per quantiser step).
                stream.codec_context.qscale = True
                stream.codec_context.global_quality = 2 * 118
            for frame in frames:
                picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
                container.mux(stream.encode(picture.reformat(format="yuv420p")))
            container.mux(stream.encode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.debug("wrote %d frames of %dx%d to %s (%s)", n, h, w, path, codec)
    return path


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # PyAV raises its own error types for a codec it was built without
        return False
    return True


def write_frames(folder: str | os.PathLike[str], frames: np.ndarray, ext: str = "png",
                 start: int = 0) -> list[Path]:
    """Write RGB frames as numbered images, the way DAVIS lays out its JPEGImages.

    Frame ``i`` goes to ``folder / f"{start + i:05d}.{ext}"`` (``00000.jpg``, ...). PNG
    is lossless; JPEG is written at quality 95. The folder is created if needed.

    Parameters
    ----------
    folder : str or PathLike
        Destination folder.
    frames : (n, h, w, 3) uint8 ndarray
        RGB frames.
    ext : {"png", "jpg"}
        Image format.
    start : int
        Number of the first file (>= 0).

    Returns
    -------
    list of Path
        The files written, in frame order.

    Raises
    ------
    ValueError
        On another extension, a negative ``start`` or a bad frame array.
    OSError
        When OpenCV cannot write a file.
    """
    frames = _check_frames(frames)
    if ext not in ("png", "jpg"):
        raise ValueError(f"ext must be 'png' or 'jpg', got {ext!r}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    options: Sequence[int] = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == "jpg" else []
    paths = []
    for i, frame in enumerate(frames):
        path = folder / f"{start + i:05d}.{ext}"
        if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), options):
            raise OSError(f"{path}: OpenCV could not write the image")
        paths.append(path)
    return paths
