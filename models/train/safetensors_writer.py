"""safetensors_writer.py -- minimal writer for models/FORMAT.md's RSNN files.

write(path, tensors, metadata): tensors = {name: numpy array}, stored as
little-endian F32 in C order, in the order given; metadata = {str: str}.
The JSON header is padded with spaces to a multiple of 8 bytes.
"""
import json
import struct

import numpy as np


def write(path, tensors, metadata):
    header = {"__metadata__": dict(metadata)}
    blobs = []
    off = 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off


def read(path):
    """Returns (tensors {name: float32 array}, metadata) -- for checks."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, d in header.items():
        assert d["dtype"] == "F32"
        b, e = d["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype="<f4").reshape(d["shape"])
    return out, meta
