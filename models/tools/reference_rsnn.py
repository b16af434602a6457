#!/usr/bin/python3
"""reference_rsnn.py -- independent float32 numpy forward pass of an snnd RSNN model file

Written from the equations (models/FORMAT.md, models/rsnn.h) and, for timing "stork", from
fmi-basel/stork's run loop (evolve every group, then propagate every connection). Imports
neither torch nor the authors' code; reads .safetensors with its own 20-line reader.

Usage:
  reference_rsnn.py MODEL.safetensors INPUT.csv OUT.csv [--raster RASTER.txt]
                    [--metrics METRICS.json] [--binarize]

INPUT.csv  header `t,ch0,...,chN-1`, one row per step (bin), t = bin start in seconds.
OUT.csv    header `step,t,<readout names>,spikes`; t = (step+1)*dt (end of the bin the
           prediction is available at), spikes = hidden spikes emitted in that step (all
           layers); values printed with %.9g.
RASTER     one line per step: the last hidden layer's spike vector as a string of 0/1.
METRICS    NeuroBench-style per-step means (see models/zoo/README.md "tinyRSNN decoders"),
           merged into the JSON file under "models"/<model name>.
--binarize feed min(count, 1) instead of the counts (what the tinyRSNN decoders were
           trained on: NeuroBench PrimateReaching marks a 4 ms bin 1 if the channel had
           any spike).

Timing "stork", one step t (all state starts at 0 except the readout Y, which starts at
readout.initial_state, default 0; U, R are the values connections deliver next step):
  hidden layer l (in order):  s_t = H(V_{t-1} - theta)          H(u) = 1 iff u > 0
                              I_t = alpha I_{t-1} + U_{t-1}
                              V_t = (beta V_{t-1} + gamma I_{t-1}) (1 - s_t)   reset zero
                              V_t =  beta V_{t-1} + gamma I_{t-1} - theta s_t  reset subtract
  readout:                    J_t = alpha_o J_{t-1} + R_{t-1}
                              Y_t = beta_o Y_{t-1} + gamma_o J_{t-1}
  then propagate:             U_t = W_in z_t + W_rec s_t + b    (z_t = x_t or s_t of layer l-1)
                              R_t = W_out s^L_t + b_o
  output y_t = Y_t (* out_scale + out_offset if present).
So x_t reaches I at t+1, V at t+2, s at t+3, J at t+4 and y at t+5.

Timing "direct" is implemented too (FORMAT.md), for completeness.
"""
import argparse
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    """Returns ({name: float32 ndarray}, {name: stored dtype}, metadata dict, stored bytes)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack_from("<Q", buf, 0)
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out, dtypes, nbytes = {}, {}, 0
    for name, h in header.items():
        b, e = h["data_offsets"]
        dt = {"F16": "<f2", "F32": "<f4"}[h["dtype"]]
        a = np.frombuffer(buf[base + b:base + e], dtype=dt).reshape(h["shape"])
        out[name] = a.astype(np.float32)
        dtypes[name] = h["dtype"]
        nbytes += e - b
    return out, dtypes, meta, nbytes


def softplus(p):
    p = p.astype(np.float64)
    return np.where(p > 20.0, p, np.log1p(np.exp(np.minimum(p, 20.0))))


def decays(T, prefix, cfg, dt, n, groups=1):
    """(alpha, beta, gamma) float32 vectors of length n for one layer or the readout (groups
    readout groups of n / groups units; a softplus tau0 may be one number per group)."""
    kind = cfg.get("tau", "decay")
    if kind == "softplus":
        tau0 = lambda key: np.repeat(np.asarray(cfg[key], dtype=np.float64), n // groups) \
            if isinstance(cfg[key], list) else cfg[key]
        a = np.exp(-dt / (tau0("tau_syn") * softplus(T[prefix + ".syn_param"])))
        b = np.exp(-dt / (tau0("tau_mem") * softplus(T[prefix + ".mem_param"])))
        g = 1.0 - b
    elif kind == "decay":
        a = T[prefix + ".alpha"].astype(np.float64)
        b = T[prefix + ".beta"].astype(np.float64)
        g = T[prefix + ".gamma"].astype(np.float64) if prefix + ".gamma" in T else 1.0 - b
    else:
        raise SystemExit(f"{prefix}: tau kind {kind!r} not supported")
    f = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float32), (n,)).copy()
    return f(a), f(b), f(g)


class Model:
    def __init__(self, path):
        T, self.dtypes, meta, self.footprint = read_safetensors(path)
        if meta.get("format") != "snnd-rsnn":
            raise SystemExit(f"{path}: __metadata__.format is not snnd-rsnn")
        self.cfg = cfg = json.loads(meta["config"])
        self.dt = float(cfg["dt"])
        self.timing = cfg.get("timing", "stork")
        self.layers = []
        for i, lc in enumerate(cfg["layers"]):
            if lc.get("neuron", "lif") != "lif":
                raise SystemExit(f"layers.{i}: only lif in this reference")
            p = f"layers.{i}"
            n = lc["size"]
            L = {"n": n, "theta": np.float32(lc.get("threshold", 1.0)),
                 "reset": lc.get("reset", "zero"),
                 "w_in": T[p + ".w_in"], "w_rec": T.get(p + ".w_rec") if lc.get("recurrent") else None,
                 "b": T.get(p + ".bias") if lc.get("bias") else None}
            L["alpha"], L["beta"], L["gamma"] = decays(T, p, lc, self.dt, n)
            self.layers.append(L)
        rc = cfg["readout"]
        self.names = rc.get("names", [f"y{i}" for i in range(rc["size"])])
        self.w_out = T["readout.w"]
        self.b_out = T.get("readout.bias") if rc.get("bias") else None
        self.groups = G = int(rc.get("groups", 1))  # output k: the mean of units g*size + k
        self.ro_a, self.ro_b, self.ro_g = decays(T, "readout", rc, self.dt, G * rc["size"], G)
        self.y0 = np.float32(rc.get("initial_state", 0.0))
        self.out_scale = T.get("readout.out_scale")
        self.out_offset = T.get("readout.out_offset")
        self.n_in = self.layers[0]["w_in"].shape[1]
        self.n_params = sum(t.size for t in T.values())
        self.T = T

    def run(self, X):
        """X: [steps, n_in] float32. Returns (Y [steps, m], spikes [steps] (all layers),
        raster of the last layer [steps, n_L] uint8, per-step NeuroBench op counts)."""
        f32 = np.float32
        steps = X.shape[0]
        nl = len(self.layers)
        V = [np.zeros(L["n"], f32) for L in self.layers]
        I = [np.zeros(L["n"], f32) for L in self.layers]
        U = [np.zeros(L["n"], f32) for L in self.layers]
        S = [np.zeros(L["n"], f32) for L in self.layers]
        m = self.w_out.shape[0]
        Y = np.full(m, self.y0, f32)
        J = np.zeros(m, f32)
        R = np.zeros(m, f32)
        outY = np.zeros((steps, m // self.groups), f32)
        nspk = np.zeros(steps, np.int64)
        raster = np.zeros((steps, self.layers[-1]["n"]), np.uint8)
        ops = np.zeros((steps, 3), np.int64)  # dense, effective MACs, effective ACs
        nz = [(L["w_in"] != 0, None if L["w_rec"] is None else L["w_rec"] != 0) for L in self.layers]
        nz_out = self.w_out != 0

        self.eff_by_conn = {}

        def count(mask, z, k, name):
            """NeuroBench single_layer_MACs for one Linear call with input z."""
            ops[k, 0] += mask.size
            eff = int(mask[:, z != 0].sum())
            binary = bool(np.all((z == 0) | (z == 1) | (z == -1)))
            ops[k, 2 if binary else 1] += eff
            self.eff_by_conn[name] = self.eff_by_conn.get(name, 0) + eff

        for k in range(steps):
            x = X[k]
            if self.timing == "stork":
                for l, L in enumerate(self.layers):
                    s = (V[l] - L["theta"] > 0).astype(f32)
                    Inew = L["alpha"] * I[l] + U[l]
                    if L["reset"] == "zero":
                        Vnew = (L["beta"] * V[l] + L["gamma"] * I[l]) * (f32(1) - s)
                    else:
                        Vnew = L["beta"] * V[l] + L["gamma"] * I[l] - L["theta"] * s
                    V[l], I[l], S[l] = Vnew, Inew, s
                Jnew = self.ro_a * J + R
                Y = self.ro_b * Y + self.ro_g * J
                J = Jnew
                for l, L in enumerate(self.layers):
                    z = x if l == 0 else S[l - 1]
                    u = L["w_in"] @ z
                    count(nz[l][0], z, k, f"layers.{l}.w_in")
                    if L["w_rec"] is not None:
                        u = u + L["w_rec"] @ S[l]
                        count(nz[l][1], S[l], k, f"layers.{l}.w_rec")
                    if L["b"] is not None:
                        u = u + L["b"]
                    U[l] = u.astype(f32)
                R = self.w_out @ S[-1]
                count(nz_out, S[-1], k, "readout.w")
                if self.b_out is not None:
                    R = R + self.b_out
                R = R.astype(f32)
            else:  # direct
                for l, L in enumerate(self.layers):
                    z = x if l == 0 else S[l - 1]
                    u = L["w_in"] @ z
                    count(nz[l][0], z, k, f"layers.{l}.w_in")
                    if L["w_rec"] is not None:
                        u = u + L["w_rec"] @ S[l]
                        count(nz[l][1], S[l], k, f"layers.{l}.w_rec")
                    if L["b"] is not None:
                        u = u + L["b"]
                    I[l] = (L["alpha"] * I[l] + u).astype(f32)
                    if L["reset"] == "zero":
                        V[l] = L["beta"] * V[l] * (f32(1) - S[l]) + L["gamma"] * I[l]
                    else:
                        V[l] = L["beta"] * V[l] + L["gamma"] * I[l] - L["theta"] * S[l]
                    S[l] = (V[l] - L["theta"] > 0).astype(f32)
                r = self.w_out @ S[-1]
                count(nz_out, S[-1], k, "readout.w")
                if self.b_out is not None:
                    r = r + self.b_out
                J = (self.ro_a * J + r).astype(f32)
                Y = self.ro_b * Y + self.ro_g * J
            y = Y.reshape(self.groups, -1).mean(axis=0, dtype=np.float32) if self.groups > 1 else Y
            if self.out_scale is not None:
                y = y * self.out_scale + self.out_offset
            outY[k] = y
            nspk[k] = int(sum(s.sum() for s in S))
            raster[k] = S[-1].astype(np.uint8)
        return outY, nspk, raster, ops


def read_input(path, n_in):
    with open(path) as f:
        head = f.readline().strip().split(",")
    if head[0] != "t" or len(head) != n_in + 1:
        raise SystemExit(f"{path}: expected header t,ch0..ch{n_in - 1}, found {len(head) - 1} channels")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    return data[:, 0], data[:, 1:].astype(np.float32)


def metrics(model, nspk, ops, binarized):
    steps = len(nspk)
    n_hidden = sum(L["n"] for L in model.layers)
    weights = [L["w_in"] for L in model.layers] + [L["w_rec"] for L in model.layers
                                                   if L["w_rec"] is not None] + [model.w_out]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.size for w in weights)
    return {
        "model": model.cfg["name"],
        "steps": steps,
        "input_binarized": binarized,
        "footprint_bytes": model.footprint,
        "n_params": model.n_params,
        "connection_sparsity": zeros / total,
        "connection_sparsity_rounded": round(zeros / total, 4),
        "activation_sparsity": 1.0 - float(nspk.sum()) / (n_hidden * steps),
        "hidden_spikes_per_step": float(nspk.sum()) / steps,
        "synops_dense_per_step": float(ops[:, 0].sum()) / steps,
        "synops_effective_macs_per_step": float(ops[:, 1].sum()) / steps,
        "synops_effective_acs_per_step": float(ops[:, 2].sum()) / steps,
        "synops_effective_per_step_by_connection": {k: v / steps for k, v in model.eff_by_conn.items()},
        "totals": {"steps": steps, "hidden_spikes": int(nspk.sum()), "dense": int(ops[:, 0].sum()),
                   "effective_macs": int(ops[:, 1].sum()), "effective_acs": int(ops[:, 2].sum())},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("out")
    ap.add_argument("--raster")
    ap.add_argument("--metrics")
    ap.add_argument("--binarize", action="store_true")
    a = ap.parse_args()
    model = Model(a.model)
    t, X = read_input(a.input, model.n_in)
    if a.binarize:
        X = np.minimum(X, 1.0).astype(np.float32)
    Y, nspk, raster, ops = model.run(X)
    with open(a.out, "w") as f:
        f.write("step,t," + ",".join(model.names) + ",spikes\n")
        for k in range(len(Y)):
            f.write("%d,%.9g,%s,%d\n" % (k, (k + 1) * model.dt,
                                         ",".join("%.9g" % v for v in Y[k]), nspk[k]))
    if a.raster:
        with open(a.raster, "w") as f:
            for row in raster:
                f.write("".join("1" if v else "0" for v in row) + "\n")
    met = metrics(model, nspk, ops, a.binarize)
    if a.metrics:  # merged into the file under "models"/<model name>
        try:
            doc = json.load(open(a.metrics))
        except (OSError, ValueError):
            doc = {}
        doc["description"] = ("NeuroBench Primate Reaching metrics computed by "
                              "models/tools/reference_rsnn.py; per-step means over the run; "
                              "definitions in models/zoo/README.md")
        doc.setdefault("models", {})[model.cfg["name"]] = dict(met, input=a.input)
        with open(a.metrics, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
    print(json.dumps(met))
    return 0


if __name__ == "__main__":
    sys.exit(main())
