"""Datasets as older fastunlc versions wrote them, made from a current one (for the
upgrade and refusal tests)."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fastunlc import dataset

OLD_SCHEMA = pa.schema([f for f in dataset.SAMPLE_SCHEMA
                        if f.name not in ("boxes", "box_pixels", "mask_jpg_offset",
                                          "mask_jpg_size")])


def downgrade_to_format_2(root: Path) -> None:
    """Rewrite a format-3 dataset as format 2 wrote it: no KEY.mask.jpg, no boxes."""
    for part in sorted((root / dataset.MANIFEST).glob("samples-*.parquet")):
        rows = pq.read_table(part).to_pylist()
        shard = root / rows[0]["shard"]
        new = shard.with_name(shard.name + ".old")
        writer = dataset.ShardWriter(new)
        with open(shard, "rb") as old:
            for row in rows:
                data = {}
                for ext in ("jpg", "png"):
                    old.seek(row[f"{ext}_offset"])
                    data[ext] = old.read(row[f"{ext}_size"])
                meta = {n: row[n] for n in OLD_SCHEMA.names if not n.endswith(("_offset",
                                                                               "_size"))}
                placed = writer.add(row["key"], {**data, "json": json.dumps(meta).encode()})
                for ext in ("jpg", "png"):
                    row[f"{ext}_offset"], row[f"{ext}_size"] = placed[ext]
        writer.close()
        new.replace(shard)
        pq.write_table(pa.Table.from_pylist(rows, schema=OLD_SCHEMA), part)
    plan = json.loads((root / "build.json").read_text())
    (root / "build.json").write_text(json.dumps({**plan, "format": 2}, indent=1) + "\n")
