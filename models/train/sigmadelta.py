"""sigmadelta.py -- Python port of models/sigmadelta.c (offline training only).

Same arithmetic as the C encoder (IEEE doubles, same operation order), so the
event lists are identical; train_braille.py --check-c compares them.
See models/sigmadelta.h for the definition of the encoder:

  * per channel a reference level r (starts at the first sample's value);
  * between samples (t0, v0) -> (t1, v1): while v1 >= r + k*theta for
    k = 1..n an UP crossing of level L = r + k*theta happens at
        t = t0 + floor((L - v0) / (v1 - v0) * (t1 - t0))      [us, int64]
    (same downwards); afterwards r += n*theta (resp. -=);
  * UP crossings are ON events unless invert (then OFF), DOWN the opposite;
  * an event closer than refractory_us to the last *emitted* event of the
    same input channel (taxel) is dropped; the level still moves;
  * output channel: ON -> c, OFF -> n_channels + c (merge_on_off: both c);
    events sorted by (t, channel).
"""
import math


class SigmaDelta:
    def __init__(self, n_channels, threshold, refractory_us=0, merge_on_off=False,
                 invert=False, hold_us=0):
        assert threshold > 0 and refractory_us >= 0 and hold_us >= 0
        self.n = n_channels
        self.theta = float(threshold)
        self.refr = int(refractory_us)
        self.merge = bool(merge_on_off)
        self.invert = bool(invert)
        self.hold = int(hold_us)  # sigmadelta.h "Hold": interpolate over the last hold_us of a longer gap
        self.reset()

    def reset(self):
        self.started = False
        self.t_prev = 0
        self.v_prev = [0.0] * self.n
        self.ref = [0.0] * self.n
        self.last_ev = [None] * self.n

    def push(self, t_us, values):
        """One frame at t_us (int) with n values; returns [(t_us, channel), ...]."""
        t_us = int(t_us)
        if not self.started:
            self.started = True
            self.t_prev = t_us
            self.v_prev = [float(v) for v in values]
            self.ref = list(self.v_prev)
            return []
        assert t_us >= self.t_prev
        t0, t1 = self.t_prev, t_us
        if self.hold > 0 and t1 - t0 > self.hold:
            t0 = t1 - self.hold
        dt = float(t1 - t0)
        th = self.theta
        out = []
        for c in range(self.n):
            v0 = self.v_prev[c]
            v1 = float(values[c])
            r = self.ref[c]
            if v1 >= r + th:
                sgn = 1.0
                n = int(math.floor((v1 - r) / th))
            elif v1 <= r - th:
                sgn = -1.0
                n = int(math.floor((r - v1) / th))
            else:
                n = 0
            if n > 0:
                up = sgn > 0
                on = up != self.invert
                ch = c if (on or self.merge) else self.n + c
                last = self.last_ev[c]
                for k in range(1, n + 1):
                    lev = r + sgn * (float(k) * th)
                    frac = (lev - v0) / (v1 - v0)
                    t = t0 + int(math.floor(frac * dt))
                    if self.refr > 0 and last is not None and t - last < self.refr:
                        continue
                    out.append((t, ch))
                    last = t
                self.last_ev[c] = last
                self.ref[c] = r + sgn * (float(n) * th)
            self.v_prev[c] = v1
        self.t_prev = t1
        out.sort()
        return out


def encode(times_us, frames, threshold, refractory_us=0, merge_on_off=False,
           invert=False, hold_us=0):
    """Encodes a whole recording: times_us[T], frames[T][n] -> event list."""
    enc = SigmaDelta(len(frames[0]), threshold, refractory_us, merge_on_off, invert, hold_us)
    ev = []
    for t, f in zip(times_us, frames):
        ev.extend(enc.push(t, f))
    return ev
