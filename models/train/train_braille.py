#!/usr/bin/env python3
"""train_braille.py -- trains the tactile Braille RSNN classifiers of models/zoo.

Data: Müller-Cleve et al. 2022, Tactile Braille Letters (iCub fingertip, 12
capacitive taxels, 40 Hz, 27 classes Space + A..Z; CC-BY-4.0), as the CSV
/work/shared/data/braille/braille_letters_reps00-39_raw40hz.csv (SOURCES.md).
Split (fixed): repetitions 0..31 train, 32..39 validation (8 x 27 = 216).

Pipeline (identical to what snnd runs on a "tactile" stream):
  raw taxels (255 = no contact, lower = more pressure), t = t_index * 25 ms
  -> sigma-delta encoder (sigmadelta.py == models/sigmadelta.c; threshold 1,
     refractory 0, invert: ON = raw value falls = pressure rises, OFF = rises)
  -> events binned into dt = 20 ms steps as per-channel counts; step k holds
     events with k*dt <= t - t_first < (k+1)*dt; a recording has
     floor((t_last - t_first) / dt) + 1 steps
  -> one recurrent LIF layer, "direct" timing of models/FORMAT.md, reset
     "subtract", per-neuron alpha/beta ("tau": "decay"), no biases
  -> leaky readout, softmax of Y_t per step; decision "sum": argmax over the
     recording of the summed per-step probabilities (trained with the mean
     per-step cross-entropy, which is what makes that sum a good score).

Usage (the zoo files; see models/zoo/README.md "Braille models" for the figures):
  python3 models/train/train_braille.py --hidden 256 --epochs 40 --variants 6 --lr 5e-3 \
      --out models/zoo/braille-rsnn.safetensors
  python3 models/train/train_braille.py --hidden 64 --epochs 200 --variants 8 --lr 5e-3 \
      --threads 1 --out models/zoo/braille-rsnn-tiny.safetensors
  python3 models/train/train_braille.py --eval-only models/zoo/braille-rsnn.safetensors --words
The best epoch on the validation split is kept (there is no third split).
"""
import argparse
import json
import math
import os
import sys
import time
from typing import Tuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_writer  # noqa: E402
from sigmadelta import encode  # noqa: E402

DATA = "/work/shared/data/braille/braille_letters_reps00-39_raw40hz.csv"
LABELS = ["Space"] + [chr(ord("A") + i) for i in range(26)]
N_TAXELS = 12
SAMPLE_US = 25000
THRESHOLD = 1.0
REFRACTORY_US = 0
INVERT = True
DT = 0.020
DT_US = 20000
TRAIN_REPS = range(0, 32)
VAL_REPS = range(32, 40)


def load(path=DATA):
    """Returns a list of dicts {label, rep, frames (T x 12 float64)}."""
    d = np.loadtxt(path, delimiter=",", skiprows=1,
                   usecols=[0, 2, 3, 4] + list(range(6, 18)))
    recs = []
    sample = d[:, 0].astype(int)
    for s in np.unique(sample):
        r = d[sample == s]
        r = r[np.argsort(r[:, 3])]
        recs.append({"label": int(r[0, 1]), "rep": int(r[0, 2]),
                     "frames": r[:, 4:].copy()})
    return recs


def bin_events(events, t_first, t_last, n_ch=2 * N_TAXELS):
    """Event list -> float32 [steps, n_ch] counts (see the module comment)."""
    steps = (t_last - t_first) // DT_US + 1
    x = np.zeros((steps, n_ch), dtype=np.float32)
    for t, c in events:
        x[(t - t_first) // DT_US, c] += 1.0
    return x


def encode_recording(frames, rng=None):
    """Frames -> binned counts; with rng, a random augmentation:
    sample period scaled by U(0.8, 1.2), start time jittered within one step,
    Gaussian value noise (sd 0.4) half of the time, and 0..3 no-contact
    frames (all 255) prepended / appended half of the time each (what a
    recording looks like inside a stream of words)."""
    frames = np.asarray(frames, dtype=np.float64)
    period = SAMPLE_US
    t0 = 0
    if rng is not None:
        period = int(round(SAMPLE_US * rng.uniform(0.8, 1.2)))
        t0 = int(rng.integers(0, DT_US))
        if rng.random() < 0.5:
            frames = frames + np.round(rng.normal(0, 0.4, frames.shape))
            frames = np.clip(frames, 0, 255)
        pre = int(rng.integers(1, 4)) if rng.random() < 0.5 else 0
        post = int(rng.integers(1, 4)) if rng.random() < 0.5 else 0
        blank = np.full((1, N_TAXELS), 255.0)
        frames = np.concatenate([blank] * pre + [frames] + [blank] * post)
    times = [t0 + i * period for i in range(len(frames))]
    ev = encode(times, frames.tolist(), THRESHOLD, REFRACTORY_US, False, INVERT)
    return bin_events(ev, times[0], times[-1])


def pad_batch(xs):
    T = max(len(x) for x in xs)
    X = np.zeros((T, len(xs), xs[0].shape[1]), dtype=np.float32)
    M = np.zeros((T, len(xs)), dtype=np.float32)
    for i, x in enumerate(xs):
        X[:len(x), i] = x
        M[:len(x), i] = 1.0
    return torch.from_numpy(X), torch.from_numpy(M)


@torch.jit.script
def run_layer(U: torch.Tensor, w_rec: torch.Tensor, w_out: torch.Tensor,
              a: torch.Tensor, b: torch.Tensor, ao: torch.Tensor, bo: torch.Tensor,
              theta: float, k: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """The time loop (see RSNN).  Spikes: Heaviside forward (H(0) = 0); the
    backward pass sees d s / d V = 1 / (1 + k |V - theta|)^2 (SuperSpike),
    through sg - sg.detach(), which is exactly 0 in the forward pass."""
    T = U.shape[0]
    B = U.shape[1]
    n = U.shape[2]
    m = w_out.shape[0]
    I = U.new_zeros(B, n)
    V = U.new_zeros(B, n)
    s = U.new_zeros(B, n)
    J = U.new_zeros(B, m)
    Y = U.new_zeros(B, m)
    Ys = []
    Ss = []
    wrt = w_rec.t()
    wot = w_out.t()
    for t in range(T):
        I = a * I + U[t] + s @ wrt
        V = b * V + (1 - b) * I - theta * s.detach()
        x = V - theta
        sg = x / (1.0 + k * x.abs())
        s = sg - sg.detach() + (x > 0).to(x.dtype)
        J = ao * J + s @ wot
        Y = bo * Y + (1 - bo) * J
        Ys.append(Y)
        Ss.append(s)
    return torch.stack(Ys), torch.stack(Ss)


def logit(p):
    return math.log(p / (1 - p))


class RSNN(torch.nn.Module):
    """FORMAT.md "direct" timing, one recurrent LIF layer, reset "subtract":
        I_t = a I_{t-1} + W_in x_t + W_rec s_{t-1}
        V_t = b V_{t-1} + (1 - b) I_t - theta s_{t-1}
        s_t = H(V_t - theta)
        J_t = a_o J_{t-1} + W_out s_t;  Y_t = b_o Y_{t-1} + (1 - b_o) J_t
    a, b, a_o, b_o are per-neuron decays in (0, 1) (sigmoid-parametrised)."""

    def __init__(self, n_in, n_hid, n_out, tau_syn=0.01, tau_mem=0.02,
                 tau_syn_o=0.01, tau_mem_o=0.05):
        super().__init__()
        self.theta = 1.0
        self.w_in = torch.nn.Parameter(torch.randn(n_hid, n_in) / math.sqrt(n_in))
        self.w_rec = torch.nn.Parameter(torch.randn(n_hid, n_hid) / math.sqrt(n_hid))
        self.w_out = torch.nn.Parameter(torch.randn(n_out, n_hid) / math.sqrt(n_hid))

        def dec(tau, n):
            p = torch.full((n,), logit(math.exp(-DT / tau)))
            return torch.nn.Parameter(p + 0.2 * torch.randn(n))
        self.pa = dec(tau_syn, n_hid)
        self.pb = dec(tau_mem, n_hid)
        self.pa_o = dec(tau_syn_o, n_out)
        self.pb_o = dec(tau_mem_o, n_out)

    def decays(self):
        f = lambda p: torch.sigmoid(p).clamp(0.0, 0.995)  # noqa: E731
        return f(self.pa), f(self.pb), f(self.pa_o), f(self.pb_o)

    def forward(self, X):
        """X [T, B, n_in] -> (Y [T, B, n_out], spikes [T, B, n_hid])."""
        a, b, ao, bo = self.decays()
        return run_layer(X @ self.w_in.t(), self.w_rec, self.w_out, a, b, ao, bo,
                         self.theta, 10.0)


def fluctuation_init(model, X, target_sd=1.0, rate_target=0.05):
    """Fluctuation-driven initialisation (Rossbroich et al. 2022) adapted to
    sparse event counts: zero-mean weights; W_in scaled so the free membrane
    potential (no reset, no recurrence) on real data has sd = target_sd *
    theta; W_rec with row norm ~ 0.5 target_sd; then both scaled up together
    until the hidden layer fires rate_target spikes per step on X (the event
    inputs are bursty, so the Gaussian rule alone leaves the layer too quiet)."""
    with torch.no_grad():
        a, b, _, _ = model.decays()
        for _ in range(3):
            U = X @ model.w_in.t()
            I = torch.zeros_like(U[0])
            V = torch.zeros_like(U[0])
            vs = []
            for t in range(len(U)):
                I = a * I + U[t]
                V = b * V + (1 - b) * I
                vs.append(V)
            sd = torch.stack(vs).std().item()
            model.w_in.data *= target_sd * model.theta / max(sd, 1e-6)
        model.w_rec.data *= 0.5 * target_sd
        for _ in range(30):
            _, S = model(X)
            if S.mean().item() >= rate_target:
                break
            model.w_in.data *= 1.15
            model.w_rec.data *= 1.15
        model.w_out.data *= 1.0 / math.sqrt(max(S.mean().item(), 1e-3) * 4)
        print(f"init: hidden rate {S.mean().item():.4f} spikes per step", flush=True)


def per_step_ce(Y, M, y):
    logp = torch.log_softmax(Y, dim=-1)  # [T, B, C]
    nll = -logp.gather(2, y.view(1, -1, 1).expand(Y.shape[0], -1, 1)).squeeze(2)
    return (nll * M).sum(0).div(M.sum(0)).mean()


def mean_prob_nll(Y, M, y):
    """-log of the true class's mean per-step probability: the quantity whose
    argmax is the "sum" decision."""
    P = (torch.softmax(Y, dim=-1) * M.unsqueeze(-1)).sum(0) / M.sum(0).unsqueeze(-1)
    return -torch.log(P.gather(1, y.view(-1, 1)).squeeze(1) + 1e-8).mean()


def decide(Y, M):
    """argmax over classes of the summed per-step softmax probabilities."""
    P = torch.softmax(Y, dim=-1) * M.unsqueeze(-1)
    return P.sum(0).argmax(-1)


def evaluate(model, xs, ys, bs=128):
    model.eval()
    correct, spikes, steps = 0, 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(xs), bs):
            X, M = pad_batch(xs[i:i + bs])
            Y, S = model(X)
            pred = decide(Y, M)
            correct += (pred == torch.tensor(ys[i:i + bs])).sum().item()
            spikes += (S * M.unsqueeze(-1)).sum().item()
            steps += M.sum().item()
    n_hid = model.w_in.shape[0]
    return correct / len(xs), spikes / (steps * n_hid) / DT


def export(model, path, name, prov):
    a, b, ao, bo = [t.detach().numpy() for t in model.decays()]
    n_hid, n_in = model.w_in.shape
    tensors = {
        "layers.0.w_in": model.w_in.detach().numpy(),
        "layers.0.w_rec": model.w_rec.detach().numpy(),
        "layers.0.alpha": a, "layers.0.beta": b,
        "readout.w": model.w_out.detach().numpy(),
        "readout.alpha": ao, "readout.beta": bo,
    }
    footprint = sum(int(np.asarray(v).size) * 4 for v in tensors.values())
    prov["footprint_bytes"] = footprint
    prov["n_params"] = footprint // 4
    names = [f"taxel{i}_on" for i in range(N_TAXELS)] + \
            [f"taxel{i}_off" for i in range(N_TAXELS)]
    config = {
        "name": name,
        "description": "Tactile Braille letters (Mueller-Cleve et al. 2022, iCub "
                       "fingertip, 12 taxels): sigma-delta ON/OFF events -> "
                       f"recurrent LIF ({n_hid}) -> softmax readout, 27 classes",
        "dt": DT,
        "timing": "direct",
        "input": {"size": n_in, "kind": "tactile", "names": names},
        "encoder": {"type": "sigmadelta", "threshold": THRESHOLD,
                    "refractory_us": REFRACTORY_US, "merge_on_off": False,
                    "invert": INVERT, "n_taxels": N_TAXELS},
        "layers": [{"size": n_hid, "neuron": "lif", "recurrent": True,
                    "bias": False, "reset": "subtract", "threshold": 1.0,
                    "tau": "decay"}],
        "readout": {"size": len(LABELS), "names": LABELS, "bias": False,
                    "task": "classification", "labels": LABELS,
                    "activation": "softmax", "decision": "sum",
                    "tau": "decay"},
        "provenance": prov,
    }
    meta = {"format": "snnd-rsnn", "version": "1",
            "config": json.dumps(config, separators=(",", ":"))}
    safetensors_writer.write(path, tensors, meta)
    return footprint


def load_model(path):
    t, meta = safetensors_writer.read(path)
    cfg = json.loads(meta["config"])
    n_hid, n_in = t["layers.0.w_in"].shape
    m = RSNN(n_in, n_hid, len(LABELS))
    with torch.no_grad():
        m.w_in.copy_(torch.from_numpy(t["layers.0.w_in"].copy()))
        m.w_rec.copy_(torch.from_numpy(t["layers.0.w_rec"].copy()))
        m.w_out.copy_(torch.from_numpy(t["readout.w"].copy()))
        for p, k in [(m.pa, "layers.0.alpha"), (m.pb, "layers.0.beta"),
                     (m.pa_o, "readout.alpha"), (m.pb_o, "readout.beta")]:
            v = torch.from_numpy(t[k].astype(np.float64)).clamp(1e-7, 1 - 1e-7)
            p.copy_(torch.log(v / (1 - v)).float())
    # decays() re-derives alpha/beta through sigmoid(logit(x)): exact to ~1 ulp.
    return m, cfg


# ---------------------------------------------------------------- word streams
def word_streams(model, val, seed, n_streams=40, letters=(4, 9), gap_s=(0.25, 1.0),
                 silence_ms=150):
    """Concatenates validation recordings into streams separated by no-contact
    gaps (all 255) of random length, each recording shifted by a random
    sub-sample offset; one encoder and one model state run over the whole
    stream.  Segmentation rule (what the stream layer implements):
      - idle until a step that contains encoder events: a segment starts there
        (the model state was reset at the previous decision);
      - from then on, sum the per-step softmax probabilities;
      - when silence_ms of event time have passed without any encoder event,
        decide: argmax of the sum; then reset the model state and go idle.
    A segment that never goes silent is decided at the end of the stream.
    Returns (letter accuracy, #decisions, #letters)."""
    rng = np.random.default_rng(seed)
    sil_steps = int(math.ceil(silence_ms / 1000 / DT - 1e-9))  # 150 ms -> 8 steps of 20 ms
    correct = total = decisions = 0
    a, b, ao, bo = [t.detach() for t in model.decays()]
    for _ in range(n_streams):
        k = int(rng.integers(letters[0], letters[1] + 1))
        idx = rng.choice(len(val), size=k, replace=False)
        times, frames = [], []
        t = 0
        for j, i in enumerate(idx):
            gap = rng.uniform(*gap_s)
            n_gap = max(1, int(gap * 1e6 // SAMPLE_US))
            if j == 0:
                n_gap = int(rng.integers(1, 8))
            for _g in range(n_gap):
                times.append(t); frames.append([255.0] * N_TAXELS); t += SAMPLE_US
            t += int(rng.integers(0, SAMPLE_US))  # random offset of the recording
            for f in val[i]["frames"]:
                times.append(t); frames.append(list(map(float, f))); t += SAMPLE_US
        for _g in range(int(1.0e6 // SAMPLE_US)):
            times.append(t); frames.append([255.0] * N_TAXELS); t += SAMPLE_US
        truth = [val[i]["label"] for i in idx]
        ev = encode(times, frames, THRESHOLD, REFRACTORY_US, False, INVERT)
        X = torch.from_numpy(bin_events(ev, times[0], times[-1]))
        preds = []
        with torch.no_grad():
            n = model.w_in.shape[0]
            I = torch.zeros(n); V = torch.zeros(n); s = torch.zeros(n)
            J = torch.zeros(len(LABELS)); Y = torch.zeros(len(LABELS))
            active, quiet, acc = False, 0, torch.zeros(len(LABELS))
            for step in range(len(X)):
                has_ev = X[step].sum().item() > 0
                if not active and not has_ev:
                    continue  # idle: state stays at its reset value (zero input)
                active = True
                I = a * I + model.w_in @ X[step] + model.w_rec @ s
                V = b * V + (1 - b) * I - model.theta * s
                s = (V > model.theta).float()
                J = ao * J + model.w_out @ s
                Y = bo * Y + (1 - bo) * J
                acc += torch.softmax(Y, -1)
                quiet = 0 if has_ev else quiet + 1
                if quiet >= sil_steps:
                    preds.append(int(acc.argmax()))
                    I.zero_(); V.zero_(); s.zero_(); J.zero_(); Y.zero_()
                    acc.zero_(); active = False; quiet = 0
            if active:
                preds.append(int(acc.argmax()))
        decisions += len(preds)
        total += len(truth)
        # letters are scored position by position; extra/missing decisions count as errors
        correct += sum(int(p == q) for p, q in zip(preds, truth))
    return correct / total, decisions, total


def max_silence_ms(recs):
    """Longest run of event-free steps inside single recordings (ms)."""
    worst = 0
    for r in recs:
        x = encode_recording(r["frames"])
        ev = x.sum(1) > 0
        run = best = 0
        first = int(np.argmax(ev))
        for e in ev[first:]:
            run = 0 if e else run + 1
            best = max(best, run)
        worst = max(worst, best)
    return worst * DT * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", type=int, default=8, help="augmented copies per train recording")
    ap.add_argument("--loss", choices=["step", "mean"], default="step",
                    help="step: mean per-step cross-entropy; mean: NLL of the mean probability")
    ap.add_argument("--rate-reg", type=float, default=1e-3)
    ap.add_argument("--silence-ms", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--name", default=None)
    ap.add_argument("--eval-only", default=None)
    ap.add_argument("--init", default=None, help="start from this .safetensors (fine-tuning)")
    ap.add_argument("--words", action="store_true", help="also score word streams")
    args = ap.parse_args()
    torch.set_num_threads(min(args.threads, 2))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t_start = time.process_time()

    recs = load()
    train = [r for r in recs if r["rep"] in TRAIN_REPS]
    val = [r for r in recs if r["rep"] in VAL_REPS]
    xv = [encode_recording(r["frames"]) for r in val]
    yv = [r["label"] for r in val]
    print(f"{len(train)} train, {len(val)} validation recordings; "
          f"max in-recording silence {max_silence_ms(val):.0f} ms", flush=True)

    if args.eval_only:
        model, cfg = load_model(args.eval_only)
        acc, rate = evaluate(model, xv, yv)
        print(f"{args.eval_only}: validation accuracy {acc*100:.2f}% "
              f"({round(acc*len(val))}/{len(val)}), hidden rate {rate:.2f} Hz")
        if args.words:
            for sil in (100, 150, 200, 300):
                wa, nd, nl = word_streams(model, val, seed=args.seed, silence_ms=sil)
                print(f"word streams (silence {sil} ms): letter accuracy "
                      f"{wa*100:.2f}% ({nd} decisions for {nl} letters)")
        return

    pool = [[encode_recording(r["frames"], rng) for _ in range(args.variants)] for r in train]
    yt = [r["label"] for r in train]
    print(f"encoded {len(train)}x{args.variants} augmented variants "
          f"({time.process_time() - t_start:.0f} s CPU)", flush=True)

    if args.init:
        model, _ = load_model(args.init)
        print(f"init: from {args.init}", flush=True)
    else:
        model = RSNN(2 * N_TAXELS, args.hidden, len(LABELS))
        X0, _ = pad_batch([pool[i][0] for i in rng.choice(len(pool), 64, replace=False)])
        fluctuation_init(model, X0)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    best = (-1.0, None, 0)
    for ep in range(args.epochs):
        model.train()
        order = rng.permutation(len(train))
        tot = 0.0
        for i in range(0, len(order), args.batch):
            ids = order[i:i + args.batch]
            X, M = pad_batch([pool[j][rng.integers(args.variants)] for j in ids])
            y = torch.tensor([yt[j] for j in ids])
            Y, S = model(X)
            if args.loss == "step":
                loss = per_step_ce(Y, M, y)
            else:
                loss = mean_prob_nll(Y, M, y)
            rate = (S * M.unsqueeze(-1)).sum((0, 1)) / M.sum()  # per neuron, spikes/step
            loss = loss + args.rate_reg * (torch.relu(rate - 0.1) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            tot += loss.item() * len(ids)
        sched.step()
        acc, hz = evaluate(model, xv, yv)
        if acc >= best[0]:
            best = (acc, {k: v.clone() for k, v in model.state_dict().items()}, ep)
        print(f"epoch {ep:3d} loss {tot/len(train):.4f} val {acc*100:.2f}% "
              f"rate {hz:.1f} Hz  cpu {time.process_time() - t_start:.0f} s", flush=True)
    model.load_state_dict(best[1])
    acc, hz = evaluate(model, xv, yv)
    cpu = time.process_time() - t_start
    print(f"best epoch {best[2]}: validation accuracy {acc*100:.2f}% "
          f"({round(acc*len(val))}/{len(val)}), mean hidden rate {hz:.2f} Hz, "
          f"training CPU {cpu:.0f} s", flush=True)
    wa = None
    if args.words:
        wa, nd, nl = word_streams(model, val, seed=args.seed, silence_ms=args.silence_ms)
        print(f"word streams (silence {args.silence_ms} ms): letter accuracy "
              f"{wa*100:.2f}% ({nd} decisions for {nl} letters)", flush=True)
    if args.out:
        name = args.name or os.path.splitext(os.path.basename(args.out))[0]
        prov = {
            "source": "snnd models/train/train_braille.py",
            "command": "python3 models/train/train_braille.py " + " ".join(sys.argv[1:]),
            "seed": str(args.seed),
            "data": "braille_letters_reps00-39_raw40hz.csv (Mueller-Cleve et al. 2022, "
                    "Tactile Braille Letters, Zenodo 10.5281/zenodo.6556273, CC-BY-4.0)",
            "license": "model: same as snnd; data CC-BY-4.0",
            "split": "train repetitions 0-31, validation repetitions 32-39 (216 recordings)",
            "validation_accuracy": f"{acc:.4f}",
            "mean_hidden_rate_hz": f"{hz:.2f}",
            "best_epoch": str(best[2]),
        }
        if args.init:
            _, icfg = load_model(args.init)
            ip = icfg.get("provenance", {})
            prov["init"] = (f"fine-tuned from a model trained by: {ip.get('command', '?')} "
                            f"(seed {ip.get('seed', '?')}, validation accuracy "
                            f"{ip.get('validation_accuracy', '?')})")
        if wa is not None:
            prov["word_stream_letter_accuracy"] = f"{wa:.4f} (silence {args.silence_ms} ms)"
        fp = export(model, args.out, name, prov)
        print(f"wrote {args.out}: footprint {fp} bytes", flush=True)


if __name__ == "__main__":
    main()
