#!/usr/bin/python3
"""convert_tinyrsnn.py -- the published tinyRSNN finger-velocity decoders -> snnd .safetensors

Source: fmi-basel/neural-decoding-RSNN @ c8a96667404c83664784217191a67ce95991eac7
(Liu, Gygax, Rossbroich, Chua, Zhang, Zenke 2024; MIT), models/<session>/tinyRSNN-<seed>.pth:
float16 stork state dicts of a 96- or 192-input, 64-neuron recurrent LIF layer and a
2-unit leaky readout (vx, vy).

Usage:
  convert_tinyrsnn.py PTH_DIR OUT_DIR            # every checkpoint in PTH_DIR (below)
  convert_tinyrsnn.py PTH_DIR OUT_DIR indy01 1   # one model
  convert_tinyrsnn.py FILE.pth OUT_DIR [--name NAME]  # one file, of any name
  convert_tinyrsnn.py --inputs TRIALS_DIR OUT_DIR  # test inputs input_{indy,loco}.csv

PTH_DIR is either a flat directory of <session>_tinyRSNN-<seed>.pth (../shared/data's layout)
or the authors' models/ directory, models/<session>/tinyRSNN-<seed>.pth (a clone of their
repository). A session outside the six published ones (a decoder retrained with the authors'
code on another recording) converts the same way; its name is kept as given. Any hidden size
and any number of readout units convert (the published files: 64 and 2), and so does the
paper's bigRSNN (<session>_bigRSNN-<seed>.pth or <session>/bigRSNN-<seed>.pth: five readout
groups stork names group3..group7, averaged; written with "groups": 5 and the five groups'
base time constants of conf/model/bigRSNN.yaml).

Writes OUT_DIR/tinyrsnn-<session>-seed<N>.safetensors (models/FORMAT.md, format version 1),
or OUT_DIR/NAME.safetensors.
Tensors are kept in F16 exactly as published (weights and the raw softplus time-constant
parameters), so the stored bytes equal NeuroBench's footprint (21000 for 96 inputs, 33288
for 192).

Mapping (stork key -> snnd tensor):
  con1.op.weight [64,P]            -> layers.0.w_in
  con2.op.weight [64,64]           -> layers.0.w_rec
  group2.syn_param / mem_param     -> layers.0.syn_param / layers.0.mem_param
  con3.op.weight [2,64]            -> readout.w
  group3.syn_param_readout / mem_param_readout -> readout.syn_param / readout.mem_param
The other keys (con*.src.*, con*.dst.*, output_group.*) are duplicates of the group
parameters (stork registers a group's parameters once per connection); the converter checks
that they are bit-identical and drops them.

Needs python3-torch (only to unpickle the .pth) and python3-numpy. Offline tool.
"""
import hashlib
import json
import os
import re
import sys

import numpy as np

REPO = "https://github.com/fmi-basel/neural-decoding-RSNN"
COMMIT = "c8a96667404c83664784217191a67ce95991eac7"
SESSIONS = {
    "indy01": "indy_20160622_01", "indy02": "indy_20160630_01", "indy03": "indy_20170131_02",
    "loco01": "loco_20170210_03", "loco02": "loco_20170215_02", "loco03": "loco_20170301_05",
}
# conf/model/tinyRSNN.yaml
TAU_MEM, TAU_SYN = 20e-3, 10e-3
TAU_MEM_RO, TAU_SYN_RO = 50e-3, 10e-3
# challenge/model.py: CustomReadoutGroup(..., initial_state=-1e-2)
READOUT_INITIAL_STATE = -1e-2
DT = 4e-3

# conf/model/bigRSNN.yaml: five readouts ro1..ro5 (stork groups 3..7, connections con3..con7),
# averaged (challenge/custom/readout.py AverageReadouts); (tau_mem, tau_syn) of each
BIG_READOUT_TAUS = [(50e-3, 10e-3), (20e-3, 5e-3), (20e-3, 20e-3), (30e-3, 10e-3), (100e-3, 30e-3)]

# stork key -> snnd tensor; the readout keys for readout group k (3 for tinyRSNN, 3..7 for
# bigRSNN) are con{k}.op.weight, group{k}.syn_param_readout, group{k}.mem_param_readout, and
# snnd concatenates the groups' rows in k order (models/rsnn.h "readout groups").
KEYMAP = [
    ("con1.op.weight", "layers.0.w_in"),
    ("con2.op.weight", "layers.0.w_rec"),
    ("group2.syn_param", "layers.0.syn_param"),
    ("group2.mem_param", "layers.0.mem_param"),
]
RO_KEYMAP = [
    ("con{k}.op.weight", "readout.w"),
    ("group{k}.syn_param_readout", "readout.syn_param"),
    ("group{k}.mem_param_readout", "readout.mem_param"),
]


def write_safetensors(path, tensors, metadata):
    """Writes {name: np.ndarray (float16|float32)} and a str->str metadata map as a
    safetensors file: u64 LE header length, JSON header padded with spaces to a
    multiple of 8, then the tensors back to back in the order given."""
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name, arr in tensors.items():
        if arr.dtype == np.float16:
            dt, raw = "F16", np.ascontiguousarray(arr, dtype="<f2").tobytes()
        elif arr.dtype == np.float32:
            dt, raw = "F32", np.ascontiguousarray(arr, dtype="<f4").tobytes()
        else:
            raise ValueError(f"{name}: unsupported dtype {arr.dtype}")
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for b in blobs:
            f.write(b)
    return off


def published_r2(pth_dir, session, seed, sd):
    """The results json lists the 5 seeds in directory-iteration order, not seed order.
    Match this seed by its connection sparsity (which the json also lists); returns
    (r2 or None if ambiguous or not published, candidate list, session mean). The json is
    looked for beside the checkpoint, then in ../../results (the authors' repository layout,
    models/<session>/tinyRSNN-<seed>.pth)."""
    full = SESSIONS.get(session)
    if full is None:
        return None, [], None
    name = f"results_tinyRSNN_{full}.json"
    found = [q for q in (os.path.join(pth_dir, name),
                         os.path.join(pth_dir, "..", "..", "results", name))
             if os.path.exists(q)]
    if not found:
        return None, [], None
    p = found[0]
    r = json.load(open(p))
    ws = [sd[k].numpy() for k in ("con1.op.weight", "con2.op.weight", "con3.op.weight")]
    cs = round(sum(int((w == 0).sum()) for w in ws) / sum(w.size for w in ws), 4)
    cand = [r2 for r2, c in zip(r["r2"], r["connection_sparsity"]) if abs(c - cs) < 5e-5]
    mean = sum(r["r2"]) / len(r["r2"])
    return (cand[0] if len(cand) == 1 else None), cand, mean


def checkpoint_path(pth_dir, session, seed):
    """The file of (session, seed) in either layout of PTH_DIR (see the usage above)."""
    for p in (os.path.join(pth_dir, f"{session}_tinyRSNN-{seed}.pth"),
              os.path.join(pth_dir, session, f"tinyRSNN-{seed}.pth")):
        if os.path.exists(p):
            return p
    raise SystemExit(f"{pth_dir}: no {session}_tinyRSNN-{seed}.pth nor {session}/tinyRSNN-{seed}.pth")


def find_checkpoints(pth_dir):
    """[(session, seed, path)] of every checkpoint in PTH_DIR, in either layout, sorted."""
    jobs = []
    for f in sorted(os.listdir(pth_dir)):
        full = os.path.join(pth_dir, f)
        m = re.match(r"(\w+?)_(?:tiny|big)RSNN-(\d+)\.pth$", f)
        if m and os.path.isfile(full):
            jobs.append((m.group(1), int(m.group(2)), full))
        elif os.path.isdir(full):
            for g in sorted(os.listdir(full)):
                m = re.match(r"(?:tiny|big)RSNN-(\d+)\.pth$", g)
                if m:
                    jobs.append((f, int(m.group(1)), os.path.join(full, g)))
    return jobs


def session_seed_of(path):
    """(session, seed) read off a checkpoint's path in either layout, else (None, None)."""
    base = os.path.basename(path)
    m = re.match(r"(\w+?)_(?:tiny|big)RSNN-(\d+)\.pth$", base)
    if m:
        return m.group(1), int(m.group(2))
    m = re.match(r"(?:tiny|big)RSNN-(\d+)\.pth$", base)
    if m:
        return os.path.basename(os.path.dirname(os.path.abspath(path))), int(m.group(1))
    return None, None


def convert(src, out_dir, session, seed, name=None):
    """Converts the checkpoint SRC; SESSION and SEED (None if unknown) name the model and its
    provenance unless NAME is given."""
    import torch

    pth_dir = os.path.dirname(os.path.abspath(src))
    raw = open(src, "rb").read()
    sd = torch.load(src, map_location="cpu")
    if not isinstance(sd, dict):
        raise SystemExit(f"{src}: not a state dict (found {type(sd).__name__}); save "
                         "model.state_dict(), as the authors' train-tinyRSNN.py does")
    # readout groups: group3 (tinyRSNN) or group3..group7 (bigRSNN)
    ro = sorted(int(m.group(1)) for m in (re.match(r"group(\d+)\.mem_param_readout$", k) for k in sd) if m)
    G = len(ro)
    if G not in (1, len(BIG_READOUT_TAUS)) or ro != list(range(3, 3 + G)):
        raise SystemExit(f"{src}: readout groups {['group%d' % k for k in ro]}: expected group3 "
                         f"(tinyRSNN) or group3..group7 (bigRSNN, conf/model/bigRSNN.yaml)")
    keys = [sk for sk, _ in KEYMAP] + [sk.format(k=k) for k in ro for sk, _ in RO_KEYMAP]
    # duplicates must be identical to the group parameters they shadow: con{j}.dst.* is group j's
    # (group2 for the hidden layer's connections 1 and 2), con{j}.src.* group2's (the hidden
    # layer feeds every readout), output_group.* the readout's (tinyRSNN)
    for k, v in sd.items():
        m = re.match(r"(con(\d+)\.(src|dst)|output_group)\.(\w+)$", k)
        if m:
            base = m.group(4)
            if m.group(1) == "output_group":
                g = f"group{ro[0]}." + base
            elif base.endswith("_readout"):
                g = f"group{m.group(2)}." + base
            else:
                g = "group2." + base
            if g not in sd:
                raise SystemExit(f"{src}: {k} shadows {g}, which the file lacks")
            if not torch.equal(v, sd[g]):
                raise SystemExit(f"{src}: {k} differs from {g}")
        elif k not in keys:
            raise SystemExit(f"{src}: unexpected key {k}")
    missing = [sk for sk in keys if sk not in sd]
    if missing:
        raise SystemExit(f"{src}: no {', '.join(missing)}: not a tinyRSNN/bigRSNN state dict (one "
                         "recurrent LIF layer and leaky readouts, conf/model/tinyRSNN.yaml)")
    for sk in keys:
        if sd[sk].dtype not in (torch.float16, torch.float32):
            raise SystemExit(f"{src}: {sk}: expected float16 or float32, found {sd[sk].dtype}")

    def take(sk):  # published files are float16 and stay so; a float32 retrain stays float32
        t = sd[sk]
        return t.numpy().astype(np.float16 if t.dtype == torch.float16 else np.float32)

    tensors = {tname: take(sk) for sk, tname in KEYMAP}
    for sk, tname in RO_KEYMAP:
        parts = [take(sk.format(k=k)) for k in ro]
        if len({p.shape[1:] for p in parts}) != 1 or len({p.dtype for p in parts}) != 1:
            raise SystemExit(f"{src}: {sk.format(k='3..7')}: groups differ in shape or type")
        tensors[tname] = np.concatenate(parts) if G > 1 else parts[0]
    n_in = tensors["layers.0.w_in"].shape[1]
    n_hid = tensors["layers.0.w_in"].shape[0]
    n_out = tensors["readout.w"].shape[0] // G
    shapes = {
        "layers.0.w_rec": (n_hid, n_hid), "readout.w": (G * n_out, n_hid),
        "layers.0.syn_param": (n_hid,), "layers.0.mem_param": (n_hid,),
        "readout.syn_param": (G * n_out,), "readout.mem_param": (G * n_out,),
    }
    for tname, want in shapes.items():
        if tuple(tensors[tname].shape) != want:
            raise SystemExit(f"{src}: {tname}: shape {list(tensors[tname].shape)}, expected "
                             f"{list(want)} for {n_in} inputs, {n_hid} hidden, {n_out} outputs")
    arch = "bigRSNN" if G > 1 else "tinyRSNN"
    if name is None:
        name = (f"{arch.lower()}-{session}-seed{seed}" if session is not None
                else os.path.splitext(os.path.basename(src))[0].lower())
    r2, cand, r2mean = published_r2(pth_dir, session, seed, sd)
    full = SESSIONS.get(session, session)
    is_published = G == 1 and session in SESSIONS and seed in range(1, 6)
    published = published_provenance(session, seed, raw, r2, cand, r2mean) if is_published else None
    dtype_note = ("Trained and published in float16." if tensors["readout.w"].dtype == np.float16
                  else "Weights in float32.")
    outs = "vx, vy" if n_out == 2 else f"{n_out} units"
    config = {
        "name": name,
        "description": (f"{arch} finger-velocity decoder (Liu et al. 2024, BioCAS 2024 Grand "
                        f"Challenge), session {full}, seed {seed}: {n_in} inputs "
                        f"(binary: 1 if the channel had any spike in the 4 ms bin), {n_hid} recurrent "
                        f"LIF, leaky readout ({outs})"
                        + (f", the mean of {G} readouts" if G > 1 else "") + f". {dtype_note}"),
        "dt": DT,
        "timing": "stork",
        "input": {"size": int(n_in), "kind": "spikes", "binary": True},
        "layers": [{
            "size": int(n_hid), "neuron": "lif", "recurrent": True, "bias": False,
            "reset": "zero", "threshold": 1.0,
            "tau": "softplus", "tau_mem": TAU_MEM, "tau_syn": TAU_SYN,
        }],
        "readout": {
            "size": int(n_out), **({"groups": G} if G > 1 else {}),
            **({"names": ["vx", "vy"]} if n_out == 2 else {}),
            "bias": False, "task": "regression",
            "tau": "softplus",
            "tau_mem": [t[0] for t in BIG_READOUT_TAUS] if G > 1 else TAU_MEM_RO,
            "tau_syn": [t[1] for t in BIG_READOUT_TAUS] if G > 1 else TAU_SYN_RO,
            "initial_state": READOUT_INITIAL_STATE,
        },
        "provenance": published if is_published else {
            "source": os.path.basename(src),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "architecture": f"{arch} ({REPO}, conf/model/{arch}.yaml)",
            "session": session,
            "seed": seed,
            "command": " ".join(["models/tools/convert_tinyrsnn.py"] + sys.argv[1:]),
        },
    }
    meta = {"format": "snnd-rsnn", "version": "1",
            "config": json.dumps(config, separators=(",", ":"))}
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, name + ".safetensors")
    nbytes = write_safetensors(out, tensors, meta)
    return out, nbytes, r2


def published_provenance(session, seed, raw, r2, cand, r2mean):
    """Where one of the 30 published checkpoints came from (the shipped files' provenance)."""
    return {
            "source": REPO,
            "commit": COMMIT,
            "path": f"models/{session}/tinyRSNN-{seed}.pth",
            "sha256": hashlib.sha256(raw).hexdigest(),
            "license": "MIT",
            "paper": "Liu, Gygax, Rossbroich, Chua, Zhang, Zenke (2024), Decoding finger velocity "
                     "from cortical spike trains with recurrent spiking neural networks",
            "session": SESSIONS[session],
            "seed": int(seed),
            "published_r2": r2,
            "published_r2_candidates": cand,
            "published_r2_session_mean": r2mean,
            "published_r2_note": "R2 on the session's 25% test split, model in float16; results json "
                                 "lists seeds in directory order, matched here by connection sparsity",
            "data": "O'Doherty et al. 2017 Zenodo 583331 via NeuroBench PrimateReaching (bin 4 ms)",
            "command": "models/tools/convert_tinyrsnn.py ../shared/data/primate_reaching/tinyRSNN models/zoo",
    }


def make_inputs(trials_dir, out_dir, steps=2500):
    """Test inputs from real macaque spikes (NLB MC_Maze, DANDI:000128, CC-BY-4.0):
    trial_748 then trial_1356 (1 ms rows, 182 unit_* columns of 0/1), 4 rows summed per
    4 ms bin (a trial's last rows that do not fill a bin are dropped), the pair repeated
    until `steps` bins, counts clipped at 1 (the decoders were trained on binary bins).
    loco (192 ch): unit k -> channel k, 182..191 silent; indy (96 ch): units 0..95."""
    bins = []
    for trial in ("trial_748_data.csv", "trial_1356_data.csv"):
        p = os.path.join(trials_dir, trial)
        head = open(p).readline().strip().split(",")
        cols = [i for i, c in enumerate(head) if c.startswith("unit_")]
        d = np.loadtxt(p, delimiter=",", skiprows=1)[:, cols]
        n = len(d) // 4
        bins.append(d[:4 * n].reshape(n, 4, -1).sum(axis=1))
    one = np.concatenate(bins)
    reps = -(-steps // len(one))
    b = np.concatenate([one] * reps)[:steps]
    clipped = int((b > 1).sum())
    b = np.minimum(b, 1).astype(np.int64)
    for name, n_ch in (("indy", 96), ("loco", 192)):
        x = np.zeros((steps, n_ch), np.int64)
        k = min(n_ch, b.shape[1])
        x[:, :k] = b[:, :k]
        out = os.path.join(out_dir, f"input_{name}.csv")
        with open(out, "w") as f:
            f.write("t," + ",".join(f"ch{i}" for i in range(n_ch)) + "\n")
            for i in range(steps):
                f.write("%.3f," % (i * DT) + ",".join(str(int(v)) for v in x[i]) + "\n")
        print(f"{out}: {steps} bins x {n_ch} channels, {int(x.sum())} spikes")
    print(f"{clipped} bin counts > 1 clipped to 1 (of {int((b > 0).sum())} non-zero)")


def main(argv):
    if len(argv) == 4 and argv[1] == "--inputs":
        make_inputs(argv[2], argv[3])
        return 0
    name = None
    if len(argv) == 5 and argv[3] == "--name":
        name = argv[4]
        argv = argv[:3]
    if len(argv) not in (3, 5):
        sys.stderr.write(__doc__)
        return 2
    src, out_dir = argv[1], argv[2]
    if os.path.isfile(src):
        if len(argv) == 5:
            sys.stderr.write("convert_tinyrsnn.py: SESSION SEED go with a directory; "
                             "for one file use --name NAME\n")
            return 2
        session, seed = session_seed_of(src)
        jobs = [(session, seed, src)]
    elif name is not None:
        sys.stderr.write("convert_tinyrsnn.py: --name goes with one .pth file\n")
        return 2
    elif len(argv) == 5:
        jobs = [(argv[3], int(argv[4]), checkpoint_path(src, argv[3], int(argv[4])))]
    else:
        jobs = find_checkpoints(src)
        if not jobs:
            sys.stderr.write(f"convert_tinyrsnn.py: {src}: no <session>_tinyRSNN-<seed>.pth "
                             "nor <session>/tinyRSNN-<seed>.pth\n")
            return 1
    for session, seed, path in jobs:
        out, nbytes, r2 = convert(path, out_dir, session, seed, name)
        print(f"{out}: {nbytes} bytes of tensors, published R2 {r2}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
