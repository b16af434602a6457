"""safetensors_writer.py -- minimal safetensors writer and reader for snnd's model files.

write(path, tensors, metadata): tensors = {name: numpy array}, int8 arrays stored as I8,
the rest as little-endian F32, in C order, in the order given; metadata = {str: str}.
The JSON header is padded with spaces to a multiple of 8 bytes.
"""
import json
import os
import struct

import numpy as np


def write(path, tensors, metadata):
    """Writes atomically (PATH.tmp, then rename); int8 arrays are stored as I8, everything
    else as little-endian F32. Returns the data size in bytes."""
    header = {"__metadata__": dict(metadata)}
    blobs = []
    off = 0
    for name, arr in tensors.items():
        a = np.asarray(arr)
        if a.dtype == np.int8:
            dt = "I8"
        else:
            a = a.astype("<f4")
            dt = "F32"
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)
    return off


def read(path):
    """Returns (tensors {name: float32 or int8 array, as stored}, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, d in header.items():
        dt = {"F32": "<f4", "I8": "i1"}[d["dtype"]]
        b, e = d["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype=dt).reshape(d["shape"])
    return out, meta
