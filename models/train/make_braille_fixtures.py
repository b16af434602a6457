#!/usr/bin/env python3
"""make_braille_fixtures.py -- writes tests/fixtures/braille/val_rep<RR>_<Letter>.csv.

Each file is one validation recording of the Tactile Braille Letters dataset
(Müller-Cleve et al. 2022, CC-BY-4.0) as `t,taxel_0,...,taxel_11` (t in
seconds, t_index * 0.025; raw taxel integers, 255 = no contact).  Also prints
what models/zoo/braille-rsnn.safetensors reads for each (Python reference).

Usage: python3 models/train/make_braille_fixtures.py [out_dir]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_braille as tb  # noqa: E402

PICKS = [(32, "Space"), (33, "B"), (35, "K"), (37, "R"), (39, "Z")]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/braille"
    os.makedirs(out, exist_ok=True)
    recs = tb.load()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    model, _ = tb.load_model(os.path.join(root, "models/zoo/braille-rsnn.safetensors"))
    for rep, letter in PICKS:
        r = next(r for r in recs if r["rep"] == rep and tb.LABELS[r["label"]] == letter)
        path = os.path.join(out, f"val_rep{rep:02d}_{letter}.csv")
        with open(path, "w") as f:
            f.write("t," + ",".join(f"taxel_{i}" for i in range(tb.N_TAXELS)) + "\n")
            for i, fr in enumerate(r["frames"]):
                f.write(f"{i * 0.025:.3f}," + ",".join(str(int(v)) for v in fr) + "\n")
        X, M = tb.pad_batch([tb.encode_recording(r["frames"])])
        with torch.no_grad():
            Y, _ = model(X)
        pred = tb.LABELS[int(tb.decide(Y, M)[0])]
        print(f"{path}: {len(r['frames'])} frames, letter {letter}, model reads {pred}")


if __name__ == "__main__":
    main()
