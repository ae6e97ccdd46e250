"""Mask storage for training: 8-bit PNG (``KEY.png``) against greyscale JPEG (``KEY.mask.jpg``).

For the masks of a built dataset: bytes per mask, the JPEG's largest and mean absolute
error against the lossless PNG (levels of 255), how many pixels change trimap class
(thresholds 0.4 and 0.7) in the full mask and in the 56x56 training targets of random
crops (the recipe's sampler, 8 crops per mask), and CPU decode rates, one core, of both
with OpenCV and of the JPEG with torchvision's ``decode_jpeg`` (batched, the call the GPU
loader makes with ``device="cuda"``; on the CPU it decodes one by one).

Example:

    python benchmarks/mask_encoding.py dataset/ --repeat 5
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from fastunlc import dataset


def rate(decode, blobs: list[bytes], repeat: int) -> float:
    """Decodes per second, best of ``repeat`` passes over ``blobs``."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        decode(blobs)
        best = min(best, time.perf_counter() - began)
    return len(blobs) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a format-3 dataset folder")
    parser.add_argument("--repeat", type=int, default=5, help="timing passes (best kept)")
    parser.add_argument("--limit", type=int, default=2000, help="masks used at most")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    data = dataset.PseudoGTDataset(args.dataset)
    count = min(len(data), args.limit)
    pngs = [data.member_bytes(i, "png") for i in range(count)]
    jpgs = [data.member_bytes(i, "mask.jpg") for i in range(count)]

    def opencv(blobs):
        return [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED) for b in blobs]

    errors, flips, pixels = [], 0, 0
    for a, b in zip(opencv(pngs), opencv(jpgs), strict=True):
        errors.append(np.abs(a.astype(np.int16) - b))
        classes = [np.digitize(m, [102.5, 178.5]) for m in (a, b)]  # p<=0.4, ..., p>0.7
        flips += int(np.count_nonzero(classes[0] != classes[1]))
        pixels += a.size
    errors = np.concatenate([e.ravel() for e in errors])
    result = {
        "masks": count, "size": f"{data.row(0)['height']}x{data.row(0)['width']}",
        "png_bytes_mean": float(np.mean([len(b) for b in pngs])),
        "jpeg_bytes_mean": float(np.mean([len(b) for b in jpgs])),
        "jpeg_abs_error_max": int(errors.max()), "jpeg_abs_error_mean": float(errors.mean()),
        "trimap_class_changes_per_million": 1e6 * flips / pixels,
        "opencv_png_per_s": rate(opencv, pngs, args.repeat),
        "opencv_jpeg_per_s": rate(opencv, jpgs, args.repeat),
    }
    try:
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        from fastunlc.training.crops import CropRecipe, draw_crop, make_batch

        recipe, changed, cells = CropRecipe(), 0, 0
        for k, (a, b) in enumerate(zip(opencv(pngs), opencv(jpgs), strict=True)):
            boxes, _ = dataset.object_boxes(a, 0.7)
            picks = [draw_crop(boxes, np.random.default_rng([k, j]), recipe) for j in range(8)]
            windows = np.array([p[:3] for p in picks])
            flips = np.array([p[3] for p in picks])
            image = [torch.zeros(3, *a.shape, dtype=torch.uint8)] * len(picks)
            targets = [make_batch(image, [torch.from_numpy(m)[None]] * len(picks), windows,
                                  flips, recipe)[1:] for m in (a, b)]
            # a cell's class: target 1 = positive, weight 0 = ignored, else negative
            classes = [t + 2 * (w == 0) for t, w in targets]
            changed += int((classes[0] != classes[1]).sum())
            cells += classes[0].numel()
        result["target_class_changes_per_million"] = 1e6 * changed / cells
        torch.set_num_threads(1)
        tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in jpgs]
        result["torchvision_jpeg_per_s"] = rate(
            lambda blobs: decode_jpeg(blobs, mode=ImageReadMode.GRAY), tensors, args.repeat)
    except ImportError:
        result["torchvision_jpeg_per_s"] = "not measured (torchvision missing)"
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
