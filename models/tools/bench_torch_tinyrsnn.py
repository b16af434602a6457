#!/usr/bin/python3
"""bench_torch_tinyrsnn.py -- the tinyRSNN decoders in plain torch, with the authors' semantics

Our own torch code (not the authors'), built from a published .pth state dict
(fmi-basel/neural-decoding-RSNN models/<session>/tinyRSNN-<seed>.pth), following
fmi-basel/stork's RecurrentSpikingModel.run: each step every group evolves (input group
takes x_t; CustomLIFGroup spikes from the previous membrane, multiplicative reset, membrane
driven by the previous synaptic current; CustomReadoutGroup likewise without spikes, its
membrane starting at -1e-2), then every connection propagates (con1 x_t, con2 s_t, con3 s_t
into the next step's inputs). Time constants: exp(-dt / (tau0 * softplus(p))).

Two modes:
  bench_torch_tinyrsnn.py PTH [--steps N] [--repeats R]
      batch 1, CPU, torch.set_num_threads(1), no_grad, float32, one step per call;
      prints {"steps_per_s_median":..., "spread_iqr":..., "repeats":...}.
  bench_torch_tinyrsnn.py PTH --check INPUT.csv EXPECTED.csv RASTER.txt [--half]
      runs the whole input and compares with reference_rsnn.py's output (max |dy|, per-step
      hidden spike-count agreement, per-neuron raster agreement). --half emulates the
      published float16 evaluation (every state and product rounded to float16).
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

TAU = {"mem": 20e-3, "syn": 10e-3, "mem_ro": 50e-3, "syn_ro": 10e-3}
DT = 4e-3
READOUT_INIT = -1e-2


class TinyRSNN:
    def __init__(self, pth, dtype=torch.float32):
        sd = torch.load(pth, map_location="cpu")
        self.dtype = dtype
        c = lambda k: sd[k].to(dtype)
        self.w_in, self.w_rec, self.w_out = c("con1.op.weight"), c("con2.op.weight"), c("con3.op.weight")
        sp = torch.nn.functional.softplus
        # computed from the (float16) parameters in the working dtype, as stork's reset_state
        p = lambda k: sd[k].to(dtype)
        self.a_h = torch.exp(-DT / (TAU["syn"] * sp(p("group2.syn_param").float()))).to(dtype)
        self.b_h = torch.exp(-DT / (TAU["mem"] * sp(p("group2.mem_param").float()))).to(dtype)
        self.a_o = torch.exp(-DT / (TAU["syn_ro"] * sp(p("group3.syn_param_readout").float()))).to(dtype)
        self.b_o = torch.exp(-DT / (TAU["mem_ro"] * sp(p("group3.mem_param_readout").float()))).to(dtype)
        self.g_h, self.g_o = 1 - self.b_h, 1 - self.b_o
        self.n_in = self.w_in.shape[1]
        self.reset()

    def reset(self):
        z = lambda n: torch.zeros(1, n, dtype=self.dtype)
        self.x = z(self.n_in)
        self.V, self.I, self.U, self.s = z(64), z(64), z(64), z(64)
        self.Y = torch.full((1, 2), READOUT_INIT, dtype=self.dtype)
        self.J, self.R = z(2), z(2)

    def step(self, x):
        """One stork step: evolve all groups, then propagate all connections."""
        # evolve: input group
        self.x = x
        # evolve: hidden CustomLIFGroup
        s = (self.V - 1.0 > 0).to(self.dtype)
        I_new = self.a_h * self.I + self.U
        V_new = (self.b_h * self.V + self.g_h * self.I) * (1.0 - s)
        self.s, self.I, self.V = s, I_new, V_new
        self.U = torch.zeros_like(self.U)
        # evolve: CustomReadoutGroup
        J_new = self.a_o * self.J + self.R
        self.Y = self.b_o * self.Y + self.g_o * self.J
        self.J = J_new
        # propagate: con1 (input->hidden), con2 (hidden->hidden), con3 (hidden->readout)
        self.U = self.U + torch.nn.functional.linear(self.x, self.w_in)
        self.U = self.U + torch.nn.functional.linear(self.s, self.w_rec)
        self.R = torch.nn.functional.linear(self.s, self.w_out)
        return self.Y


class TinyRSNNHalf(TinyRSNN):
    """float16 emulation: CPU torch 1.13 has no half matmul, so products are done in
    float32 and every result is rounded to float16 (as the published GPU evaluation)."""

    def __init__(self, pth):
        super().__init__(pth, dtype=torch.float16)

    def step(self, x):
        h, f = (lambda t: t.to(torch.float16)), (lambda t: t.float())
        self.x = h(x)
        s = h(f(self.V) - 1.0 > 0)
        I_new = h(f(h(f(self.a_h) * f(self.I))) + f(self.U))
        V_new = h(f(h(f(h(f(self.b_h) * f(self.V))) + f(h(f(self.g_h) * f(self.I))))) * f(h(1.0 - f(s))))
        self.s, self.I, self.V = s, I_new, V_new
        J_new = h(f(h(f(self.a_o) * f(self.J))) + f(self.R))
        self.Y = h(f(h(f(self.b_o) * f(self.Y))) + f(h(f(self.g_o) * f(self.J))))
        self.J = J_new
        self.U = h(f(h(f(self.x) @ f(self.w_in).T)) + f(h(f(self.s) @ f(self.w_rec).T)))
        self.R = h(f(self.s) @ f(self.w_out).T)
        return self.Y


def check(args):
    X = np.loadtxt(args.check[0], delimiter=",", skiprows=1, ndmin=2)[:, 1:]
    ref = np.loadtxt(args.check[1], delimiter=",", skiprows=1, ndmin=2)
    raster = np.array([[c == "1" for c in line.strip()] for line in open(args.check[2])])
    net = TinyRSNNHalf(args.pth) if args.half else TinyRSNN(args.pth)
    Y, S = [], []
    with torch.no_grad():
        for k in range(len(X)):
            Y.append(net.step(torch.tensor(X[k:k + 1], dtype=torch.float32)).float().numpy()[0])
            S.append(net.s.float().numpy()[0] > 0)
    Y, S = np.array(Y), np.array(S)
    dy = np.abs(Y - ref[:, 2:4])
    scale = float(np.abs(ref[:, 2:4]).max())
    cnt_ok = S.sum(1) == ref[:, 4]
    neur_ok = (S == raster).all(1)
    first_bad = int(np.argmin(neur_ok)) if not neur_ok.all() else None
    print(json.dumps({
        "pth": args.pth, "dtype": "float16-emulated" if args.half else "float32",
        "steps": len(X), "max_abs_dy": float(dy.max()), "output_scale": scale,
        "max_abs_dy_over_scale": float(dy.max()) / scale,
        "spike_count_steps_equal": int(cnt_ok.sum()), "raster_steps_equal": int(neur_ok.sum()),
        "first_raster_difference_step": first_bad,
        "torch_spikes": int(S.sum()), "ref_spikes": int(ref[:, 4].sum())}))


def bench(args):
    torch.set_num_threads(1)
    net = TinyRSNN(args.pth)
    rng = np.random.default_rng(1)
    X = torch.tensor((rng.random((args.steps, net.n_in)) < 0.01).astype(np.float32))
    rates = []
    with torch.no_grad():
        for r in range(args.repeats + 1):
            net.reset()
            t0 = time.perf_counter()
            for k in range(args.steps):
                net.step(X[k:k + 1])
            dt = time.perf_counter() - t0
            if r > 0:  # first run is warm-up
                rates.append(args.steps / dt)
    q = statistics.quantiles(rates, n=4)
    print(json.dumps({"steps_per_s_median": statistics.median(rates), "spread_iqr": q[2] - q[0],
                      "repeats": args.repeats, "steps": args.steps, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "model": args.pth}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pth")
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--check", nargs=3, metavar=("INPUT", "EXPECTED", "RASTER"))
    ap.add_argument("--half", action="store_true")
    args = ap.parse_args()
    if args.check:
        check(args)
    else:
        bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
