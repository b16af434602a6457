#!/usr/bin/env python3
"""Run a published tinyRSNN checkpoint through the authors' own code (stork + challenge).

Verification aid only: nothing from fmi-basel/stork or fmi-basel/neural-decoding-RSNN is
vendored here; both are imported from checkouts given on the command line.

    check_stork_tinyrsnn.py --stork STORK_DIR --authors RSNN_DIR --pth CKPT.pth \
        --input tests/fixtures/tinyrsnn/input_indy.csv [--dtype float32|float16] \
        [--out OUT.csv] [--raster-out OUT.txt] \
        [--expected X.expected.csv] [--raster X.raster.txt] [--snnd SNND_OUT.csv]

STORK_DIR: fmi-basel/stork at 40c68fe (the commit pinned in the authors' requirements.txt).
RSNN_DIR: fmi-basel/neural-decoding-RSNN (provides challenge/ and conf/).
The model is built like evaluate.py does it: get_model() with conf/model/tinyRSNN.yaml,
configure_model(), load_state_dict() into the float32 model, then model.half() for float16;
input goes through DatasetLoader.to_ras -> RasDataset -> DataLoader(batch_size=1) and
model.predict() in eval mode (dropout off).  get_model gets data=None: evaluate.py passes the
training set only for the initialiser, whose weights load_state_dict overwrites.  neurobench
and randman (not used in the forward pass) are stubbed; needs python3-omegaconf.
CPU torch has no Half linear/exp/softplus, so with --dtype float16 these are computed in
float32 and rounded to float16 (as CUDA does with float32 opmath), as are ops with a Python
float operand; tensor-tensor ops run in CPU Half (float math, rounded per op, like CUDA).

--model-yaml AUTHORS/conf/model/bigRSNN.yaml --seed 0 (no --pth) builds a random-init bigRSNN
(--save-state, --list-keys).  Output CSV: step,vx,vy (%.9g; stork output index = step);
raster: one line of 0/1 per step.  With --expected/--snnd (CSV step,t,vx,vy...) it prints max |dvx|, |dvy| at time offsets -1,0,+1 and the
first step where |d| > 1e-6; with --raster it counts mismatching hidden-raster rows.
"""
import argparse, importlib.abc, importlib.machinery, sys, types
import numpy as np
import torch

STUBBED = ("neurobench", "randman")


class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in STUBBED:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        m = types.ModuleType(spec.name)
        m.__path__ = []
        m.__getattr__ = lambda attr: type(attr, (), {"__init__": lambda self, *a, **k: None})
        return m

    def exec_module(self, module):
        pass


def build_cfg(authors, model_yaml=None):
    from omegaconf import OmegaConf
    c = lambda p: OmegaConf.load(f"{authors}/conf/{p}.yaml")
    data = c("data/data-default")
    data.pop("defaults", None)
    model = OmegaConf.load(model_yaml) if model_yaml else c("model/tinyRSNN")
    training = OmegaConf.merge(c("training/training-default"), c(f"training/training-{model.name}"))
    training.pop("defaults", None)
    return OmegaConf.create({
        "model": model, "training": training, "data": data,
        "initializer": c("initializer/fluct-driven"), "device": "cpu", "seed": 0, "nb_workers": 0,
    })


def half_ops_on_cpu():
    """CPU torch lacks Half linear/exp/softplus: compute in float32, round result to float16."""
    def wrap(mod, name):
        orig = getattr(mod, name)

        def f(x, *a, **k):
            if x.dtype != torch.float16:
                return orig(x, *a, **k)
            a = [t.float() if torch.is_tensor(t) else t for t in a]
            return orig(x.float(), *a, **k).half()
        setattr(mod, name, f)
    wrap(torch.nn.functional, "linear"), wrap(torch.nn.functional, "softplus"), wrap(torch, "exp")
    # CPU Half rounds a Python-scalar operand to float16 first; CUDA keeps it in float32
    for name in ("__mul__", "__rmul__", "__add__", "__radd__", "__sub__", "__rsub__", "__truediv__"):
        def op(x, o, _orig=getattr(torch.Tensor, name)):
            if x.dtype == torch.float16 and isinstance(o, float):
                return _orig(x.float(), o).half()
            return _orig(x, o)
        setattr(torch.Tensor, name, op)


def run(args):
    sys.meta_path.insert(0, _Stub())
    sys.path[:0] = [args.stork, args.authors]
    from challenge.model import get_model
    from challenge.train import configure_model
    from challenge.evaluate import get_test_loss
    from challenge.data import DatasetLoader

    x = np.loadtxt(args.input, delimiter=",", skiprows=1)[:, 1:].astype(np.float32)
    T, C = x.shape
    cfg = build_cfg(args.authors, args.model_yaml)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    model = get_model(cfg, nb_inputs=C, dtype=torch.float32, data=None)
    model = configure_model(model, cfg, None, torch.float32)
    if args.pth:
        model.load_state_dict(torch.load(args.pth, map_location="cpu"))
    if args.save_state:
        torch.save(model.state_dict(), args.save_state)
    dtype = torch.float32
    if args.dtype == "float16":
        half_ops_on_cpu()
        model = model.half()
        dtype = torch.float16
    ds = DatasetLoader(basepath="", dtype=dtype).to_ras(
        torch.from_numpy(x)[None], torch.zeros(1, T, 2))
    model.set_nb_steps(T)
    model.loss_stack = get_test_loss(cfg)
    model.eval()
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=1, shuffle=False)))[0]
    with torch.no_grad():
        y = model.predict(batch).float().numpy()[0]
    spk = model.groups[1].get_out_sequence().float().numpy()[0] if len(model.groups) > 1 else None
    return model, y, spk


def compare(name, y, ref):
    for off in (-1, 0, 1):  # compare ours[k] with ref[k + off]
        n = len(y) - abs(off)
        a = y[max(0, -off):max(0, -off) + n]
        b = ref[max(0, off):max(0, off) + n]
        d = np.abs(a - b)
        bad = np.nonzero(d.max(1) > 1e-6)[0]
        print(f"{name} offset {off:+d}: max|dvx|={d[:, 0].max():.3g} max|dvy|={d[:, 1].max():.3g}"
              f" first step |d|>1e-6: {bad[0] + max(0, -off) if len(bad) else None}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stork", required=True)
    p.add_argument("--authors", required=True)
    p.add_argument("--pth")
    p.add_argument("--model-yaml", help="default: AUTHORS/conf/model/tinyRSNN.yaml")
    p.add_argument("--seed", type=int, help="torch.manual_seed before get_model (random init)")
    p.add_argument("--save-state", help="torch.save the model state_dict here")
    p.add_argument("--list-keys", action="store_true")
    p.add_argument("--input", required=True)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    p.add_argument("--out"), p.add_argument("--raster-out")
    p.add_argument("--expected"), p.add_argument("--raster"), p.add_argument("--snnd")
    args = p.parse_args()
    model, y, spk = run(args)
    if args.list_keys:
        for k, v in model.state_dict().items():
            print(k, tuple(v.shape), v.dtype)
    if args.out:
        with open(args.out, "w") as f:
            f.write("step,vx,vy\n")
            for k in range(len(y)):
                f.write(f"{k},{y[k, 0]:.9g},{y[k, 1]:.9g}\n")
    if args.raster_out and spk is not None:
        np.savetxt(args.raster_out, spk.astype(int), fmt="%d", delimiter="")
    print(f"{args.pth or args.model_yaml} {args.dtype}: {len(y)} steps, {int(spk.sum())} hidden spikes, "
          f"{int((spk.sum(1) > 0).sum())} steps with spikes")
    for name, path in (("expected", args.expected), ("snnd", args.snnd)):
        if path:
            compare(name, y, np.loadtxt(path, delimiter=",", skiprows=1)[:, 2:4])
    if args.raster:
        ref = np.array([[int(c) for c in l.strip()] for l in open(args.raster) if l.strip()])
        mism = np.nonzero((ref != spk).any(1))[0]
        print(f"raster: {len(mism)} mismatching steps, first {mism[:5].tolist()}")
        for off in (-1, 1):
            n = len(spk) - 1
            a, b = (spk[1:], ref[:n]) if off == -1 else (spk[:n], ref[1:])
            print(f"raster offset {off:+d}: {int((a != b).any(1).sum())} mismatching steps")


if __name__ == "__main__":
    main()
