#!/usr/bin/env python3
"""make_seeds.py -- writes the small seed corpora of tests/fuzz (offline tool).

    python3 tests/fuzz/make_seeds.py

Writes tests/fuzz/corpus/<target>/ for frames, model, onnx, wav, csv and config
(nir seeds are copies of tests/fixtures/nir, made by this script too), and
tests/fixtures/dnsmos_bam/bam8.safetensors, the 8-channel dnsmos-bam the
frames fuzzer serves (bam8() says how it is cut from the zoo file). The
protocol and ONNX seeds are protobuf encoded by hand here (field numbers from
proto/snnd.proto and models/onnx.proto); nothing in the build runs this script.
"""
import json
import math
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..'))
CORPUS = os.path.join(HERE, 'corpus')


# ---- protobuf wire format ----------------------------------------------------
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def f_float(field, x):
    return varint(field << 3 | 5) + struct.pack('<f', x)


def packed_varints(field, ns):
    return f_bytes(field, b''.join(varint(n) for n in ns))


def packed_floats(field, xs):
    return f_bytes(field, struct.pack('<%df' % len(xs), *xs))


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# ---- snnd.v1 frames ------------------------------------------------------------
def env(id_, field, body):
    e = (f_varint(1, id_) if id_ else b'') + f_bytes(field, body)
    return varint(len(e)) + e


def hello(id_=1, version=1, name='fuzz'):
    return env(id_, 10, f_varint(1, version) + f_bytes(2, name))


def open_stream(id_, sid, model, kind=0, bin_us=0, subscribe=True, options=()):
    b = f_bytes(1, sid) + f_bytes(2, model)
    if kind:
        b += f_varint(3, kind)
    if bin_us:
        b += f_varint(4, bin_us)
    for k, v in options:
        b += f_bytes(5, f_bytes(1, k) + f_bytes(2, v))
    if subscribe:
        b += f_varint(6, 1)
    return env(id_, 12, b)


def close_stream(id_, sid):
    return env(id_, 14, f_bytes(1, sid))


def spikes(sid, ch, t):
    return env(0, 16, f_bytes(1, sid) + packed_varints(2, ch) + packed_varints(3, t))


def binned(sid, n_ch, counts, t_us=0):
    b = f_bytes(1, sid) + f_varint(2, n_ch) + packed_floats(3, counts)
    if t_us:
        b += f_varint(4, t_us)
    return env(0, 17, b)


def tactile(sid, t_us, values):
    return env(0, 18, f_bytes(1, sid) + f_varint(2, t_us) + packed_floats(3, values))


def audio(sid, rate, fmt, pcm):
    return env(0, 19, f_bytes(1, sid) + f_varint(2, rate) + (f_varint(3, fmt) if fmt else b'') + f_bytes(4, pcm))


def flush(sid, t_us):
    return env(0, 20, f_bytes(1, sid) + f_varint(2, t_us))


def subscribe(id_, sid, unsub=False):
    return env(id_, 22 if unsub else 21, f_bytes(1, sid))


def stats(id_, sid=''):
    return env(id_, 26, f_bytes(1, sid) if sid else b'')


def target(sid, t_us, values):
    return env(0, 40, f_bytes(1, sid) + f_varint(2, t_us) + packed_floats(3, values))


def label(sid, t_us, index):
    return env(0, 41, f_bytes(1, sid) + f_varint(2, t_us) + f_varint(3, index & (2**64 - 1)))


def save_model(id_, sid, name):
    return env(id_, 42, f_bytes(1, sid) + f_bytes(2, name))


def pcm_s16(n, rate, hz=440.0):
    return struct.pack('<%dh' % n, *(int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n)))


def pcm_f32(n, rate, hz=440.0):
    return struct.pack('<%df' % n, *(0.25 * math.sin(2 * math.pi * hz * i / rate) for i in range(n)))


def frames_seeds():
    # Model names are those of the fuzzer's model directory (fuzz_frames.c).
    T = 'tinyrsnn'   # 96 spike inputs, 4 ms bins
    S = 'tactile'    # 2 taxels -> sigma-delta encoder -> 4 inputs, classifier
    N = 'neurons'    # NIR graph (tests/fixtures/nir/neurons.nir)
    write('frames', 'hello', hello())
    write('frames', 'hello_bad_version', hello(7, 9))
    write('frames', 'stats', hello() + stats(2))
    sp = (hello() + open_stream(2, 'a', T, subscribe=True) +
          spikes('a', [0, 5, 95, 3], [0, 1000, 4000, 9000]) + spikes('a', [1, 2], [12000, 20000]) +
          flush('a', 40000) + stats(3, 'a') + close_stream(4, 'a'))
    write('frames', 'spikes', sp)
    write('frames', 'spikes_no_close', open_stream(1, 's.1', T, kind=1, bin_us=2000) +
          spikes('s.1', [7] * 8, [i * 500 for i in range(8)]) + flush('s.1', 100000))
    write('frames', 'binned', open_stream(1, 'b', T, kind=2) +
          binned('b', 96, [1.0 if i % 7 == 0 else 0.0 for i in range(96 * 3)], 8000) +
          binned('b', 96, [0.0] * 96) + close_stream(2, 'b'))
    write('frames', 'tactile', open_stream(1, 'tx', S, kind=3, options=[('segment_silence_ms', '30')]) +
          b''.join(tactile('tx', 20000 * i, [float(i % 5), float((3 * i) % 4)]) for i in range(12)) +
          flush('tx', 400000) + close_stream(2, 'tx'))
    write('frames', 'tactile_hold', open_stream(1, 'th', S, kind=3, options=[('tactile_hold_ms', '30')]) +
          tactile('th', 0, [3.0, 1.0]) + tactile('th', 700000, [9.0, 0.0]) + tactile('th', 720000, [2.0, 5.0]) +
          flush('th', 900000) + close_stream(2, 'th'))
    write('frames', 'analog', open_stream(1, 'an', S, kind=5) +
          tactile('an', 0, [0.5, 0.25, 1, 0]) + tactile('an', 50000, [1, 1, 1, 1]) + close_stream(2, 'an'))
    write('frames', 'audio', open_stream(1, 'au', T, kind=4) +
          audio('au', 16000, 0, b'\x00\x10' * 64) + audio('au', 8000, 1, struct.pack('<4f', 0, .5, -.5, 1)))
    # Audio scorers (bam: dnsmos-bam; p808: DNSMOS P.808): chunks below a
    # window, so the close tiles the clip and scores one window.
    B, P = 'bam', 'p808'
    # 0.3 s clips: tiled to 9.6 s, one window.
    write('frames', 'audio_bam_s16', open_stream(1, 'ab', B, kind=4) +
          audio('ab', 16000, 0, pcm_s16(2400, 16000)) + audio('ab', 16000, 0, pcm_s16(2400, 16000)) +
          stats(2, 'ab') + close_stream(3, 'ab'))
    write('frames', 'audio_bam_f32_44k', open_stream(1, 'af', B) +
          audio('af', 44100, 1, pcm_f32(13000, 44100)) + audio('af', 44100, 1, pcm_f32(1, 44100)) +
          audio('af', 48000, 1, pcm_f32(8, 48000)) + close_stream(2, 'af'))
    write('frames', 'audio_p808_8k', open_stream(1, 'ap', P, kind=4) +
          audio('ap', 8000, 0, pcm_s16(2400, 8000)) + audio('ap', 8000, 0, b'\x01') +
          flush('ap', 10**6) + close_stream(2, 'ap'))
    write('frames', 'audio_wrong_kind', open_stream(1, 'aw', B, kind=1) + spikes('aw', [0], [0]) +
          open_stream(2, 'ax', P, kind=3) + close_stream(3, 'aw') + close_stream(4, 'ax'))
    # e-prop learning: learner from Target frames (2 outputs), learncls from
    # Label frames (3 classes, tactile); SaveModel with valid and invalid names.
    R, C = 'learner', 'learncls'
    learn = [('learn', 'eprop'), ('lr', '0.01'), ('update_interval', '5')]
    write('frames', 'learn_target', open_stream(1, 'lt', R, options=learn) +
          target('lt', 0, [0.5, -0.25]) + spikes('lt', [0, 1, 3], [0, 4000, 8000]) +
          target('lt', 12000, [0.0, 1.0]) + spikes('lt', [1, 2], [16000, 30000]) + target('lt', 20000, [1.0]) +
          flush('lt', 60000) + save_model(2, 'lt', 'saved-lt') + save_model(3, 'lt', '../x') +
          close_stream(4, 'lt'))
    write('frames', 'learn_label', open_stream(1, 'll', C, kind=3, options=learn + [('optimizer', 'sgd')]) +
          label('ll', 0, 1) + b''.join(tactile('ll', 20000 * i, [float(i % 3), 1.0]) for i in range(6)) +
          label('ll', 60000, -1) + label('ll', 80000, 7) + flush('ll', 200000) +
          save_model(2, 'll', 'saved.ll') + save_model(3, 'll', '.hidden') + close_stream(4, 'll'))
    write('frames', 'learn_errors', open_stream(1, 'le', T) + open_stream(6, 'lh', T, options=learn) + target('le', 0, [1, 2]) +
          save_model(2, 'le', 'x') + open_stream(3, 'lf', N, options=[('learn', 'eprop')]) +
          open_stream(4, 'lg', B, options=[('learn', 'eprop')]) + label('nosuch', 0, 0) + close_stream(5, 'le'))
    write('frames', 'nir', open_stream(1, 'n', N) + spikes('n', [0, 1], [0, 100]) + flush('n', 1000) +
          close_stream(2, 'n'))
    write('frames', 'subscribe', open_stream(1, 'p', T, subscribe=False) + subscribe(2, 'p') +
          subscribe(3, 'p', unsub=True) + subscribe(4, 'nosuch') + close_stream(5, 'p') + close_stream(6, 'p'))
    write('frames', 'errors', open_stream(1, 'bad id!', T) + open_stream(2, 'x', 'nosuch') +
          open_stream(3, 'y', T, kind=9) + open_stream(4, 'z', T, options=[('zzz', '1')]) +
          env(5, 11, b'') + env(6, 40, b'') + spikes('q', [1], [1]))
    write('frames', 'bad_frame', hello() + b'\xff\xff\xff\xff\xff\x01')
    write('frames', 'bad_envelope', hello() + b'\x03\x0a\xff\xff')
    write('frames', 'empty_envelope', b'\x00\x00\x00')


# ---- safetensors models (format snnd-rsnn, models/FORMAT.md) ----------------
def safetensors(config, tensors):
    header = {'__metadata__': {'format': 'snnd-rsnn', 'version': '1', 'config': json.dumps(config)}}
    data = b''
    for name, shape, values in tensors:
        raw = struct.pack('<%df' % len(values), *values)
        header[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + data


def tactile_model():
    cfg = {'dt': 0.02, 'timing': 'direct', 'input': {'size': 4, 'kind': 'tactile'},
           'encoder': {'type': 'sigmadelta', 'threshold': 1.0, 'refractory_us': 0, 'merge_on_off': False,
                       'invert': True, 'n_taxels': 2},
           'layers': [{'size': 4, 'neuron': 'lif', 'recurrent': True, 'reset': 'subtract', 'threshold': 1.0,
                       'tau': 'decay'}],
           'readout': {'size': 3, 'names': ['A', 'B', 'C'], 'labels': ['A', 'B', 'C'], 'task': 'classification',
                       'activation': 'softmax', 'decision': 'sum', 'tau': 'decay'}}
    t = [('layers.0.w_in', [4, 4], [0.9, 0, 0.5, 0, 0, 0.8, 0, 0.4, 0.3, 0.3, 0.3, 0.3, 1, 0, 0, 1]),
         ('layers.0.w_rec', [4, 4], [0, 0.2, 0, 0, 0, 0, 0.2, 0, 0, 0, 0, 0.2, 0.2, 0, 0, 0]),
         ('layers.0.alpha', [4], [0.5] * 4), ('layers.0.beta', [4], [0.8] * 4),
         ('readout.w', [3, 4], [1, 0, 0, 0.5, 0, 1, 0, 0.5, 0, 0, 1, 0.5]),
         ('readout.alpha', [3], [0.2] * 3), ('readout.beta', [3], [0.9] * 3)]
    return safetensors(cfg, t)


def learner_model(classes=0):
    """A model e-prop can train (direct timing, LIF, reset subtract, alpha 0, one beta):
    regression with 2 outputs from 4 spike inputs, or (classes > 0) a classifier
    of 2 taxels through a sigma-delta encoder."""
    cfg = {'dt': 0.01, 'timing': 'direct', 'input': {'size': 4},
           'layers': [{'size': 6, 'neuron': 'lif', 'recurrent': True, 'reset': 'subtract', 'threshold': 0.5,
                       'tau': 'decay'}],
           'readout': {'size': 2, 'tau': 'decay'}}
    n_out = 2
    if classes:
        n_out = classes
        cfg['input']['kind'] = 'tactile'
        cfg['encoder'] = {'type': 'sigmadelta', 'threshold': 1.0, 'refractory_us': 0, 'merge_on_off': False,
                          'invert': False, 'n_taxels': 2}
        names = [chr(ord('A') + i) for i in range(classes)]
        cfg['readout'] = {'size': classes, 'names': names, 'labels': names, 'task': 'classification',
                          'activation': 'softmax', 'decision': 'sum', 'tau': 'decay'}
    w_in = [((i * 37) % 11 - 5) / 10 for i in range(24)]
    w_rec = [0 if i % 7 == 0 else ((i * 13) % 9 - 4) / 20 for i in range(36)]
    w_out = [((i * 29) % 7 - 3) / 5 for i in range(6 * n_out)]
    t = [('layers.0.w_in', [6, 4], w_in), ('layers.0.w_rec', [6, 6], w_rec),
         ('layers.0.alpha', [6], [0.0] * 6), ('layers.0.beta', [6], [0.9] * 6),
         ('readout.w', [n_out, 6], w_out), ('readout.alpha', [n_out], [0.0] * n_out),
         ('readout.beta', [n_out], [0.8] * n_out)]
    return safetensors(cfg, t)


def bam8():
    """The zoo's dnsmos-bam cut to 8 channels in every convolution (its first 8
    filters of its first 8 input channels; the head's first layer keeps the
    columns of those channels): a valid dnsmos-bam file whose windows cost a
    fraction of the shipped one's, so the frames fuzzer's audio streams stay
    fast. Its scores mean nothing. Same provenance and licence as the zoo file
    (CC BY 4.0, models/zoo/README.md)."""
    with open(os.path.join(ROOT, 'models', 'zoo', 'dnsmos-bam.safetensors'), 'rb') as f:
        d = f.read()
    n = struct.unpack('<Q', d[:8])[0]
    hdr = json.loads(d[8:8 + n])
    body = d[8 + n:]
    meta = dict(hdr.pop('__metadata__'))
    widths = [int(w) for w in meta['widths'].split(',')]
    meta['widths'] = ','.join(['8'] * len(widths))
    meta.pop('test_pearson', None)
    meta['derived'] = 'tests/fuzz/make_seeds.py bam8(): models/zoo/dnsmos-bam.safetensors cut to 8 channels'
    size = {'I8': 1, 'F32': 4}
    out, data = {'__metadata__': meta}, b''
    for name, t in hdr.items():
        raw = body[t['data_offsets'][0]:t['data_offsets'][1]]
        shape, k = list(t['shape']), size[t['dtype']]
        if name.startswith('conv'):
            if name.endswith('.w'):
                co, ci = shape[0], shape[1]
                keep_ci = min(ci, 8)
                raw = b''.join(raw[(o * ci + i) * 9:(o * ci + i + 1) * 9] for o in range(8) for i in range(keep_ci))
                shape = [8, keep_ci, 3, 3]
            else:
                raw, shape = raw[:8 * k], [8]
        elif name == 'fc0.w':
            o, i = shape
            ro = meta.get('readout', 'rate')
            cols = list(range(8)) + (list(range(widths[-1], widths[-1] + 8)) if ro == 'rate+max' else [])
            raw = b''.join(raw[r * i + c:r * i + c + 1] for r in range(o) for c in cols)
            shape = [o, len(cols)]
        elif name.startswith('readout.'):
            raw, shape = raw[:8 * k], [8]
        out[name] = {'dtype': t['dtype'], 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(out).encode()
    h += b' ' * (-len(h) % 8)
    with open(os.path.join(ROOT, 'tests', 'fixtures', 'dnsmos_bam', 'bam8.safetensors'), 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + data)


def model_seeds():
    for f in ('tinyrsnn-indy01-seed1', 'tinyrsnn-loco01-seed1'):
        shutil.copy(os.path.join(ROOT, 'models', 'zoo', f + '.safetensors'),
                    os.path.join(CORPUS, 'model', f + '.safetensors'))
    write('model', 'tactile.safetensors', tactile_model())
    write('model', 'learner.safetensors', learner_model())
    write('model', 'learncls.safetensors', learner_model(classes=3))
    write('model', 'alif.safetensors', safetensors(
        {'dt': 0.001, 'input': {'size': 1}, 'layers': [{'size': 1, 'neuron': 'alif', 'reset': 'subtract'}],
         'readout': {'size': 1}},
        [('layers.0.w_in', [1, 1], [1]), ('layers.0.alpha', [1], [0]), ('layers.0.beta', [1], [.5]),
         ('layers.0.gamma', [1], [1]), ('layers.0.rho', [1], [.5]), ('layers.0.adapt', [1], [1]),
         ('readout.w', [1, 1], [1]), ('readout.alpha', [1], [0]), ('readout.beta', [1], [0])]))
    write('model', 'stork_two_layers.safetensors', safetensors(
        {'dt': 0.004, 'timing': 'stork', 'input': {'size': 2, 'binary': True},
         'layers': [{'size': 3, 'neuron': 'lif', 'recurrent': True, 'reset': 'zero', 'tau': 'softplus',
                     'tau_mem': 0.02, 'tau_syn': 0.01},
                    {'size': 2, 'neuron': 'lif', 'bias': True, 'reset': 'subtract'}],
         'readout': {'size': 1, 'names': ['y'], 'initial_state': -0.01, 'tau': 'softplus', 'tau_mem': 0.05,
                     'tau_syn': 0.01}},
        [('layers.0.w_in', [3, 2], [1, 0, 0, 1, 1, 1]), ('layers.0.w_rec', [3, 3], [0, 0, 0, 1, 0, 0, 0, 0, 0]),
         ('layers.0.syn_param', [3], [0.1] * 3), ('layers.0.mem_param', [3], [0.2] * 3),
         ('layers.1.w_in', [2, 3], [1, 1, 0, 0, 1, 1]), ('layers.1.bias', [2], [0.1, 0.2]),
         ('layers.1.alpha', [2], [0.5] * 2), ('layers.1.beta', [2], [0.5] * 2),
         ('readout.w', [1, 2], [1, -1]), ('readout.syn_param', [1], [0.3]), ('readout.mem_param', [1], [0.3])]))

    write('model', 'readout_groups.safetensors', readout_groups_model())


def readout_groups_model():
    """Two readout groups averaged, per-group softplus tau0 arrays (bigRSNN's readout)."""
    return safetensors(
        {'dt': 0.004, 'timing': 'stork', 'input': {'size': 2, 'binary': True},
         'layers': [{'size': 3, 'neuron': 'lif', 'recurrent': False, 'reset': 'zero', 'tau': 'softplus',
                     'tau_mem': 0.02, 'tau_syn': 0.01}],
         'readout': {'size': 1, 'groups': 2, 'names': ['y'], 'initial_state': -0.01, 'tau': 'softplus',
                     'tau_mem': [0.05, 0.02], 'tau_syn': [0.01, 0.005]}},
        [('layers.0.w_in', [3, 2], [2, 0, 0, 2, 1, 1]),
         ('layers.0.syn_param', [3], [0.1] * 3), ('layers.0.mem_param', [3], [0.2] * 3),
         ('readout.w', [2, 3], [1, -1, 0.5, 0.3, 0.2, -0.4]), ('readout.syn_param', [2], [0.3, 1.0]),
         ('readout.mem_param', [2], [0.3, -0.5])])


# ---- ONNX graphs -----------------------------------------------------------------
def o_dim(v):
    return f_bytes(1, f_varint(1, v) if isinstance(v, int) else f_bytes(2, v))


def o_value(name, dims):
    shape = b''.join(o_dim(d) for d in dims)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, f_varint(1, 1) + f_bytes(2, shape)))


def o_tensor(name, dims, floats=None, int64s=None, raw=None):
    b = b''.join(f_varint(1, d) for d in dims)
    if int64s is not None:
        b += f_varint(2, 7) + packed_varints(7, int64s)
    else:
        b += f_varint(2, 1)
        if raw is not None:
            b += f_bytes(9, struct.pack('<%df' % len(raw), *raw))
        else:
            b += packed_floats(4, floats)
    return b + f_bytes(8, name)


def o_attr_ints(name, vals):
    return f_bytes(1, name) + f_varint(20, 7) + b''.join(f_varint(8, v) for v in vals)


def o_attr_int(name, v):
    return f_bytes(1, name) + f_varint(20, 2) + f_varint(3, v)


def o_node(op, ins, outs, attrs=(), name=''):
    b = b''.join(f_bytes(1, i) for i in ins) + b''.join(f_bytes(2, o) for o in outs)
    b += f_bytes(3, name or op) + f_bytes(4, op)
    return b + b''.join(f_bytes(5, a) for a in attrs)


def o_model(nodes, inits, inp, out, opset=13):
    g = b''.join(f_bytes(1, n) for n in nodes) + f_bytes(2, 'g')
    g += b''.join(f_bytes(5, t) for t in inits)
    g += f_bytes(11, inp) + f_bytes(12, out)
    return f_varint(1, 7) + f_bytes(8, f_bytes(1, '') + f_varint(2, opset)) + f_bytes(7, g)


def onnx_seeds():
    # x[N,4] -> MatMul W[4,3] -> Add b -> Relu -> Sigmoid
    write('onnx', 'mlp.onnx', o_model(
        [o_node('MatMul', ['x', 'W'], ['h']), o_node('Add', ['h', 'b'], ['h2']), o_node('Relu', ['h2'], ['h3']),
         o_node('Sigmoid', ['h3'], ['y'])],
        [o_tensor('W', [4, 3], [0.1 * i for i in range(12)]), o_tensor('b', [3], raw=[0.5, -0.5, 0])],
        o_value('x', ['N', 4]), o_value('y', ['N', 3])))
    # x[1,1,6,6] -> Conv(2 filters 3x3, pad 1) -> Relu -> MaxPool 2x2 -> Flatten -> MatMul -> Tanh
    write('onnx', 'conv.onnx', o_model(
        [o_node('Conv', ['x', 'K', 'kb'], ['c'], [o_attr_ints('kernel_shape', [3, 3]), o_attr_ints('pads', [1, 1, 1, 1]),
                                                  o_attr_ints('strides', [1, 1])]),
         o_node('Relu', ['c'], ['r']),
         o_node('MaxPool', ['r'], ['p'], [o_attr_ints('kernel_shape', [2, 2]), o_attr_ints('strides', [2, 2])]),
         o_node('Flatten', ['p'], ['f'], [o_attr_int('axis', 1)]),
         o_node('MatMul', ['f', 'W'], ['m']), o_node('Tanh', ['m'], ['y'])],
        [o_tensor('K', [2, 1, 3, 3], [((i * 7) % 5 - 2) * 0.1 for i in range(18)]), o_tensor('kb', [2], [0.1, -0.1]),
         o_tensor('W', [18, 2], [0.01 * i for i in range(36)])],
        o_value('x', [1, 1, 6, 6]), o_value('y', [1, 2])))
    # Reshape / Transpose / Slice / Concat / ReduceMax / elementwise
    write('onnx', 'shape_ops.onnx', o_model(
        [o_node('Reshape', ['x', 'shp'], ['r']),
         o_node('Transpose', ['r'], ['t'], [o_attr_ints('perm', [1, 0])]),
         o_node('Slice', ['t', 'st', 'en', 'ax'], ['s']),
         o_node('Concat', ['s', 's'], ['c'], [o_attr_int('axis', 0)]),
         o_node('Abs', ['c'], ['a']), o_node('Sqrt', ['a'], ['q']), o_node('Exp', ['q'], ['e']),
         o_node('Log', ['e'], ['l']), o_node('Mul', ['l', 'l'], ['mu']), o_node('Div', ['mu', 'two'], ['d']),
         o_node('Sub', ['d', 'two'], ['su']), o_node('Neg', ['su'], ['n']), o_node('Max', ['n', 'd'], ['mx']),
         o_node('Pow', ['mx', 'two'], ['pw']),
         o_node('ReduceMax', ['pw'], ['y'], [o_attr_ints('axes', [1]), o_attr_int('keepdims', 0)])],
        [o_tensor('shp', [2], int64s=[2, 3]), o_tensor('st', [1], int64s=[0]), o_tensor('en', [1], int64s=[2]),
         o_tensor('ax', [1], int64s=[0]), o_tensor('two', [1], [2.0])],
        o_value('x', [6]), o_value('y', [4])))
    write('onnx', 'unsqueeze.onnx', o_model(
        [o_node('Unsqueeze', ['x'], ['u'], [o_attr_ints('axes', [0])]), o_node('Identity', ['u'], ['i']),
         o_node('Squeeze', ['i'], ['y'], [o_attr_ints('axes', [0])])],
        [], o_value('x', [3, 2]), o_value('y', [3, 2]), opset=11))


# ---- WAV ---------------------------------------------------------------------------
def chunk(cid, body):
    return cid + struct.pack('<I', len(body)) + body + (b'\x00' if len(body) % 2 else b'')


def wav(fmt_body, data, extra=b''):
    body = b'WAVE' + chunk(b'fmt ', fmt_body) + extra + chunk(b'data', data)
    return b'RIFF' + struct.pack('<I', len(body)) + body


def wav_seeds():
    s16 = struct.pack('<8h', 0, 1000, -1000, 32767, -32768, 5, -5, 0)
    write('wav', 's16.wav', wav(struct.pack('<HHIIHH', 1, 1, 16000, 32000, 2, 16), s16))
    f32 = struct.pack('<4f', 0, 0.5, -0.5, 1)
    write('wav', 'f32.wav', wav(struct.pack('<HHIIHHH', 3, 1, 8000, 32000, 4, 32, 0), f32,
                                chunk(b'fact', struct.pack('<I', 4))))
    guid_pcm = struct.pack('<IHH', 1, 0, 0x10) + bytes([0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71])
    ext = struct.pack('<HHIIHHHHI', 0xFFFE, 1, 48000, 96000, 2, 16, 22, 16, 4) + guid_pcm
    write('wav', 'extensible.wav', wav(ext, s16, chunk(b'LIST', b'INFOISFT\x05\x00\x00\x00snnd\x00')))
    write('wav', 'stereo.wav', wav(struct.pack('<HHIIHH', 1, 2, 16000, 64000, 4, 16), s16))
    write('wav', 's24_3ch.wav', wav(struct.pack('<HHIIHH', 1, 3, 22050, 198450, 9, 24), s16[:9]))
    write('wav', 'u8.wav', wav(struct.pack('<HHIIHH', 1, 1, 8000, 8000, 1, 8), bytes(range(0, 256, 17))))
    write('wav', 'f64.wav', wav(struct.pack('<HHIIHH', 3, 1, 16000, 128000, 8, 64), struct.pack('<2d', 0.25, -1)))
    write('wav', 'alaw.wav', wav(struct.pack('<HHIIHH', 6, 1, 8000, 8000, 1, 8), bytes([0xd5, 0x55, 0xaa, 0x80])))
    write('wav', 'mulaw.wav', wav(struct.pack('<HHIIHH', 7, 2, 8000, 16000, 2, 8), bytes([0xff, 0x00, 0x80, 0x0f])))
    streamed = bytearray(wav(struct.pack('<HHIIHH', 1, 1, 16000, 32000, 2, 16), s16))
    streamed[4:8] = struct.pack('<I', 0x7FFFF024)
    streamed[40:44] = struct.pack('<I', 0x7FFFF000)
    write('wav', 'streamed.wav', bytes(streamed) + b'\x01')


# ---- CSV and config -------------------------------------------------------------
def csv_seeds():
    with open(os.path.join(ROOT, 'tests', 'fixtures', 'tinyrsnn', 'input_indy.csv'), 'rb') as f:
        head = b''.join(f.readline() for _ in range(6))
    # The first byte of a csv input chooses the expected channel count
    # (fuzz_csv.c): below 0x80 means any.
    write('csv', 'indy_head.csv', b'\n' + head)
    write('csv', 'taxels.csv', b'\x83t,label,taxel_0,taxel_1,taxel_2\r\n0.0,A,1,2,3\r\n0.025, A ,4.5,-1e3,0\r\n\r\n'
                               b'0.05,A,-0,7,1e-30\r\n')
    write('csv', 'channels.csv', b'\nsample,ch0,ch1,x\n0,1,0,zz\n1,0,1,yy\n')
    write('csv', 'guess.csv', b'\nletter,a,b,c\nA,1,2,3\nB,4,5,6\n')


def config_seeds():
    with open(os.path.join(ROOT, 'deploy', 'snnd.example.json'), 'rb') as f:
        write('config', 'example.json', f.read())
    write('config', 'small.json', b'{"listen": ["unix:/tmp/x.sock", "tcp:[::1]:7878"], "workers": 3,'
                                  b' "log_level": "debug", "limits": {"max_frame_bytes": 65536}}')
    write('config', 'bad.json', b'{"listen": "tcp:nohost", "unix_mode": "0660", "zzz": 1}')


def nir_seeds():
    d = os.path.join(CORPUS, 'nir')
    os.makedirs(d, exist_ok=True)
    for f in ('neurons.nir', 'recurrent.nir', 'flatten.nir', 'subgraph.nir', 'affine_lif.nir', 'err_bad_tau.nir',
              'err_edge_shape.nir'):
        shutil.copy(os.path.join(ROOT, 'tests', 'fixtures', 'nir', f), os.path.join(d, f))


if __name__ == '__main__':
    os.makedirs(os.path.join(CORPUS, 'model'), exist_ok=True)
    bam8()
    frames_seeds()
    model_seeds()
    onnx_seeds()
    wav_seeds()
    csv_seeds()
    config_seeds()
    nir_seeds()
