"""Reading videos and frame folders (spec section 0).

A *source* is a video file (decoded with PyAV, OpenCV as fallback) or a folder of
``.jpg`` / ``.png`` frames named so that natural sorting gives their order (DAVIS's
``00000.jpg``, FBMS's ``cars1_01.jpg``). Frames come out as RGB uint8 ``(h, w, 3)``
at the source's size, one at a time, so that no more of a video than the caller
keeps is ever held in memory.

Normalisation of unusual frames (documented results, not errors): grey frames are
repeated into three channels, an alpha channel is dropped, 16-bit frames are scaled
to 8 bits. Unusable input raises :class:`~fastunlc.errors.InputError` with a
one-line message naming the input and the reason.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class SourceInfo:
    """What is known about a source before decoding it all.

    ``frame_count`` is the container's claim for videos (headers can be wrong: a
    truncated file decodes fewer frames) and exact for frame folders.
    """

    path: str
    name: str
    kind: str  # "video" or "frames"
    height: int
    width: int
    frame_count: int | None
    fps: float | None


def _natural_key(name: str) -> list[object]:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _to_rgb8(image: np.ndarray, source: str | os.PathLike[str], bgr: bool) -> np.ndarray:
    """Convert a decoded image to RGB uint8 ``(h, w, 3)``; see the module notes."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(source, f"unsupported pixel type {image.dtype} (expected 8- or 16-bit)")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputError(source, f"unsupported image layout {image.shape} "
                                 "(expected grey, RGB or RGBA)")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    image = image[:, :, :3]
    return np.ascontiguousarray(image[:, :, ::-1] if bgr else image)


class FrameSource:
    """A video file or frame folder; iterate with :meth:`frames`.

    Parameters
    ----------
    path : str or PathLike
        A video file (anything FFmpeg decodes) or a folder of image files.

    Raises
    ------
    InputError
        The path does not exist, is empty, is not a decodable video, or the folder
        holds no images, images of mixed sizes, or unreadable images.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.decode_note: str | None = None
        """Set when decoding ended early: on a damaged stream, or before the frame count
        the header announces (a truncated file). The frames before it are used."""
        if not self.path.exists():
            raise InputError(path, "no such file or folder")
        if self.path.is_dir():
            self._files = sorted(
                (p for p in self.path.iterdir()
                 if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                key=lambda p: _natural_key(p.name),
            )
            if not self._files:
                raise InputError(path, "folder holds no image files "
                                       f"({', '.join(IMAGE_EXTENSIONS)})")
            first = self._read_image(self._files[0])
            self.info = SourceInfo(str(self.path), self.path.name, "frames",
                                   first.shape[0], first.shape[1], len(self._files), None)
        else:
            if self.path.stat().st_size == 0:
                raise InputError(path, "file is empty")
            self._files = []
            self.info = self._probe_video()

    # -- frame folders -----------------------------------------------------------------
    def _read_image(self, file: Path) -> np.ndarray:
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise InputError(file, "cannot be read as an image (corrupt or unsupported format)")
        return _to_rgb8(image, file, bgr=True)

    def _folder_frames(self, start: int, stop: int | None, wanted: Callable[[int], bool]
                       ) -> Iterator[tuple[int, np.ndarray | None]]:
        h, w = self.info.height, self.info.width
        end = len(self._files) if stop is None else min(stop, len(self._files))
        for index in range(start, end):
            if not wanted(index):
                yield index, None
                continue
            frame = self._read_image(self._files[index])
            if frame.shape[:2] != (h, w):
                raise InputError(self._files[index], f"frame size {frame.shape[1]}x{frame.shape[0]}"
                                                     f" differs from the first frame's {w}x{h}")
            yield index, frame

    # -- video files -------------------------------------------------------------------
    def _probe_video(self) -> SourceInfo:
        import av

        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise InputError(self.path, "file has no video stream")
                stream = container.streams.video[0]
                count = stream.frames or None
                fps = float(stream.average_rate) if stream.average_rate else None
                height, width = stream.codec_context.height, stream.codec_context.width
            if not height or not width:
                raise InputError(self.path, "video stream reports no frame size")
            self._backend = "pyav"
        except InputError:
            raise
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as err:
            # OpenCV sometimes opens what PyAV's FFmpeg refuses (and the reverse).
            capture = cv2.VideoCapture(str(self.path))
            ok, frame = capture.read() if capture.isOpened() else (False, None)
            if not ok:
                capture.release()
                reason = str(err).split(":")[-1].strip() or type(err).__name__
                raise InputError(self.path, f"not a decodable video ({reason})") from None
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
            fps = capture.get(cv2.CAP_PROP_FPS) or None
            height, width = frame.shape[:2]
            capture.release()
            self._backend = "opencv"
        return SourceInfo(str(self.path), self.path.stem, "video", height, width, count, fps)

    def _video_frames(self, start: int, stop: int | None, wanted: Callable[[int], bool]
                      ) -> Iterator[tuple[int, np.ndarray | None]]:
        if self._backend == "opencv":
            yield from self._opencv_frames(start, stop, wanted)
            return
        import av

        index = -1
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    index += 1
                    if index < start:
                        continue
                    if stop is not None and index >= stop:
                        return
                    # Every frame is decoded (later ones depend on it); only the wanted
                    # ones pay for the conversion to RGB.
                    yield index, frame.to_ndarray(format="rgb24") if wanted(index) else None
        except av.error.FFmpegError as err:
            # A truncated or damaged stream: keep what decoded, say where it stopped.
            self._note_early_end(index, str(err))
            return
        self._check_frame_count(index)

    def _opencv_frames(self, start: int, stop: int | None, wanted: Callable[[int], bool]
                       ) -> Iterator[tuple[int, np.ndarray | None]]:
        capture = cv2.VideoCapture(str(self.path))
        try:
            index = -1
            while stop is None or index + 1 < stop:
                keep = index + 1 >= start and wanted(index + 1)
                ok, frame = capture.read() if keep else (capture.grab(), None)
                if not ok:
                    self._check_frame_count(index)
                    return
                index += 1
                if index >= start:
                    yield index, _to_rgb8(frame, self.path, bgr=True) if keep else None
        finally:
            capture.release()

    def _check_frame_count(self, last: int) -> None:
        """After the stream's end at frame ``last`` (-1: none decoded), note a decode that
        gave fewer frames than the header announces: a truncated file ends without an error."""
        count = self.info.frame_count
        if count is not None and last + 1 < count:
            self._note_early_end(last, f"the header announces {count} frames")

    def _note_early_end(self, last: int, why: str) -> None:
        self.decode_note = f"decoding stopped after frame {last}: {why}"
        logger.warning("%s: %s", self.path, self.decode_note)

    # -- public ------------------------------------------------------------------------
    def frames(self, start: int = 0, stop: int | None = None,
               wanted: Callable[[int], bool] | None = None
               ) -> Iterator[tuple[int, np.ndarray | None]]:
        """Yield ``(index, frame)`` for source frames ``start <= index < stop``.

        ``index`` is the frame's position in the source (0-based); ``frame`` is RGB
        uint8 ``(h, w, 3)`` at the source's size, or ``None`` for an index that
        ``wanted`` (default: every index) rejects: such a frame is still decoded, to keep
        the stream in step, but not converted (an image file is not read at all).
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        wanted = wanted or (lambda index: True)
        if self.info.kind == "frames":
            return self._folder_frames(start, stop, wanted)
        return self._video_frames(start, stop, wanted)


def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """Frame size ``(h, w)`` after shrinking so the longer side is at most ``max_side``.

    Scale = ``min(max_side / h, max_side / w, 1)``; sizes are truncated to whole
    pixels as the reference's ``imresize(image, scale)`` does (768x576 -> 650x487).
    Never enlarges.
    """
    scale = min(max_side / height, max_side / width, 1.0)
    if scale >= 1.0:
        return height, width
    return max(1, int(height * scale)), max(1, int(width * scale))


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB uint8 frame to ``size = (h, w)`` with area averaging (anti-aliased
    shrinking, like the reference's PIL bilinear resize)."""
    if frame.shape[:2] == size:
        return frame
    return cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
