/*
 * eprop.h -- e-prop online learning for a recurrent network of LIF / adaptive
 * LIF neurons with a leaky readout (Bellec, Scherr, Subramoney, Hajek, Salaj,
 * Legenstein, Maass 2020, "A solution to the learning dilemma for recurrent
 * networks of spiking neurons", Nat. Commun. 11:3625).
 *
 * Two timings, each following one family of NEST models (nest-simulator
 * @ 84b06d8d), whose sine-wave regression tests this module reproduces
 * (tests/conformance/conf_eprop_nest.c); every convention adopted is listed in
 * models/EPROP.md:
 *   SNN_EPROP_INTERVAL    eprop_iaf(_adapt)_bsshslm_2020, eprop_readout_bsshslm_2020,
 *                         eprop_synapse_bsshslm_2020: gradients per update interval
 *   SNN_EPROP_CONTINUOUS  eprop_iaf, eprop_iaf_adapt, eprop_iaf_psc_delta(_adapt),
 *                         eprop_readout, eprop_synapse (optimize_each_step)
 *
 * Glossary
 *   interval   eprop_update_interval T steps (one training sequence). Gradients
 *              are accumulated over an interval and applied at its last step.
 *   window     the last learning_window steps of an interval, where errors (and
 *              so learning signals and the loss) are non-zero.
 *   k          the step inside the interval, 0..T-1.
 *   group      one of the three weight matrices: in (n_rec x n_in),
 *              rec (n_rec x n_rec), out (n_out x n_rec); row-major, row = target.
 *
 * Where to start: fill snn_eprop_params with snn_eprop_params_default() and the
 * sizes, call snn_eprop_init() with the initial weights, then call
 * snn_eprop_step() once per time step with the input spikes and the target.
 *
 * Equations (interval timing), per recurrent neuron j, presynaptic input i,
 * readout o, step k
 * (alpha = exp(-dt/tau_m), kappa = exp(-dt/tau_out), rho = exp(-dt/adapt_tau);
 *  c = 1 if regular_spike_arrival else 1-alpha, c_o likewise with kappa, or as
 *  readout_spike_arrival says if it is non-zero):
 *
 *  At k = 0 (start of an interval): if reset_on_update, v = a = r = z = y = 0.
 *  Whatever reset_on_update says, every trace below restarts from 0 (NEST's
 *  synapse starts each interval's trace at the first presynaptic spike).
 *
 *  Recurrent neurons (LIF: beta = 0, no a):
 *    v_j  <- alpha v_j + c (sum_i Win_ji x_i + sum_l Wrec_jl z_l) - v_th z_j
 *            (with reset_adapted: - A_j z_j, A_j of the previous step)
 *    a_j  <- rho a_j + z_j                      (z_j: spike of the previous step)
 *    A_j   = v_th + beta a_j                    (adaptive threshold)
 *    psi_j = 0 while refractory, else h max(0, 1 - |v_j - A_j| / w)
 *            (psi_shape piecewise linear; or exponential, fast sigmoid derivative,
 *            arctan derivative as NEST's surrogate_gradient_function, see below)
 *    z_j  <- 1 if v_j >= A_j and not refractory, else 0
 *  Readout (leaky integrator, reset with the neurons):
 *    y_o  <- kappa y_o + c_o sum_j Wout_oj z_j
 *    out_o = y_o (mean_squared_error) or pi_o = softmax(y)_o (cross_entropy)
 *  Error and loss, in the window only (0 outside), target y*:
 *    err_o = y_o - y*_o (MSE)     or  pi_o - y*_o (CE)
 *    loss += 0.5/n_out sum_o err_o^2   or  -sum_o y*_o log pi_o
 *  Learning signal (feedback B, n_rec x n_out: B = Wout^T "symmetric", or a
 *  fixed random matrix given at init):
 *    L_j = sum_o B_jo err_o
 *  Presynaptic traces (one per presynaptic neuron, not per synapse); a recurrent
 *  spike arrives one step after it was emitted:
 *    zbar_i  <- alpha zbar_i  + c x_i               (input i)
 *    zbar_l  <- alpha zbar_l  + c z_l(previous step) (recurrent l)
 *    zout_j  <- kappa zout_j  + c_o z_j              (for the readout weights)
 *  Eligibility of synapse i->j (eps only for adaptive j, the second component
 *  of the eligibility vector; for LIF e_ji = psi_j zbar_i):
 *    e_ji    = psi_j (zbar_i - beta eps_ji)
 *    eps_ji <- rho eps_ji + e_ji
 *    ebar_ji <- kappa ebar_ji + (1 - kappa) e_ji    (filtered by the readout's kappa)
 *    G_ji   += L_j ebar_ji,      S_ji += e_ji        (S only when c_reg > 0)
 *    Gout_oj += err_o zout_j
 *  At k = T-1 (end of the interval), firing-rate regularisation toward f_target:
 *    reg_j = c_reg (n_spikes_j / T - f_target dt / 1000) / T,   G_ji += reg_j S_ji
 *  and, if average_gradient, each interval's G is divided by learning_window
 *  (once: the sum over a batch is divided when the batch is full). After
 *  batch_size intervals the summed gradient, divided by batch_size, is applied to
 *  every learnable group (NEST's WeightOptimizer: its step counter starts at 1 and
 *  a synapse updated late runs the missed steps, the first with its gradient and
 *  the rest with 0, which is what updating every synapse every batch gives):
 *    gradient descent:  W <- W - eta G
 *    Adam (step n = 1, 2, ...):  m <- b1 m + (1-b1) G;  s <- b2 s + (1-b2) G^2;
 *      W <- W - eta sqrt(1 - b2^n)/(1 - b1^n) m / (sqrt(s) + epsilon)
 *  and clamped to [w_min, w_max]. With no_autapses the diagonal of Wrec stays 0.
 *
 * Continuous timing (SNN_EPROP_CONTINUOUS, NEST's eprop_iaf, eprop_iaf_adapt,
 * eprop_iaf_psc_delta(_adapt) with optimize_each_step): no intervals, no state
 * resets, weights change every step. Differences from the above:
 *    v_j  <- alpha v_j + c I_j;  after a spike v_j -= v_th (RESET_SUBTRACT) or
 *            v_j = v_reset (RESET_TO_VALUE), in the same step
 *    y_o  <- kappa_out y_o + c_o sum_j Wout_oj z_j
 *    f_j  <- kappa_reg f_j + (1 - kappa_reg) z_j / dt;  reg_j = c_reg (f_j - f_target dt/1000)
 *    zbar_i <- alpha zbar_i + s_i (s_i: presynaptic spike arriving this step, gain 1)
 *    e_ji = psi_j (zbar_i - beta eps_ji);  eps_ji <- rho eps_ji + e_ji
 *    ebar_ji <- kappa ebar_ji + e_ji;  ebar_reg_ji <- kappa_reg ebar_reg_ji + (1 - kappa_reg) e_ji
 *    g_ji = L_j ebar_ji + reg_j ebar_reg_ji,   gout_oj = err_o zout_j (zout gain 1)
 *  and each step's g is applied at once (gradient descent, or Adam whose step
 *  count is per presynaptic neuron: n advances every step since the first one
 *  computed). NEST evaluates a synapse lazily, when the next presynaptic spike
 *  arrives, and reproducing it exactly fixes three details:
 *    - the weight a spike is transmitted with includes the steps up to two
 *      steps before its arrival: step k's g is computed and applied in step k+1;
 *    - the eligibility of a synapse is computed only from the step before the
 *      first presynaptic spike on, and only for isi_trace_cutoff steps after the
 *      step before each presynaptic spike; in between e = 0 (eps, ebar and
 *      ebar_reg only decay) and no update is made;
 *    - Adam applies the gradient of the first step after such a gap first and
 *      then one zero-gradient step per skipped step; its counter runs from the
 *      start of the simulation (NEST's optimizer starts at step 1 of its own
 *      clock), so a synapse first evaluated at step k makes k + adam_t0 + 1
 *      iterations (k + adam_t0 + 2 for readout synapses, whose NEST clock is
 *      one step later), the first with the gradient, the rest with zero.
 *
 * Memory: everything is allocated in snn_eprop_init through the allocator;
 * snn_eprop_step allocates nothing. Per-synapse state exists only where the rule
 * needs it: ebar (and, interval timing, G) for learnable input/recurrent groups;
 * S (interval) or ebar_reg (continuous) when c_reg > 0; eps for the rows of
 * adaptive neurons; Adam's m and s with Adam. Interval timing also keeps, for the
 * LIF rows, the last min(T, 128) steps' presynaptic traces, psi and L, and folds
 * them into ebar, G and S in one pass per chunk (the same sums in another order:
 * equal up to rounding; steps with psi_j = 0 cost nothing for row j).
 */
#ifndef SNN_EPROP_H
#define SNN_EPROP_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "model.h"

typedef enum snn_eprop_loss {
    SNN_EPROP_MSE = 0,           /* mean squared error, outputs y */
    SNN_EPROP_CROSS_ENTROPY = 1, /* softmax cross-entropy, outputs softmax(y) */
} snn_eprop_loss;

typedef enum snn_eprop_feedback {
    SNN_EPROP_FEEDBACK_SYMMETRIC = 0, /* B = Wout^T, current readout weights */
    SNN_EPROP_FEEDBACK_RANDOM = 1,    /* B fixed, given at init */
} snn_eprop_feedback;

typedef enum snn_eprop_optimizer {
    SNN_EPROP_SGD = 0,  /* plain gradient descent */
    SNN_EPROP_ADAM = 1,
} snn_eprop_optimizer;

typedef enum snn_eprop_timing {
    SNN_EPROP_INTERVAL = 0,   /* NEST eprop_*_bsshslm_2020: gradients per update interval */
    SNN_EPROP_CONTINUOUS = 1, /* NEST eprop_iaf*: per-step updates, no interval */
} snn_eprop_timing;

typedef enum snn_eprop_reset_mode {
    SNN_EPROP_RESET_SUBTRACT = 0, /* v -= v_th after a spike */
    SNN_EPROP_RESET_TO_VALUE = 1, /* v = v_reset after a spike (continuous timing only) */
} snn_eprop_reset_mode;

typedef enum snn_eprop_surrogate {
    /* NEST's surrogate_gradient_function; d = |v - threshold|, h = psi_height, w = psi_width */
    SNN_EPROP_PIECEWISE_LINEAR = 0,   /* h max(0, 1 - d/w) (Bellec et al.) */
    SNN_EPROP_EXPONENTIAL = 1,        /* h exp(-d/w) */
    SNN_EPROP_FAST_SIGMOID_DERIV = 2, /* h (1 + d/w)^-2 */
    SNN_EPROP_ARCTAN_DERIV = 3,       /* h / (1 + (d/w)^2) */
} snn_eprop_surrogate;

typedef enum snn_eprop_group {
    SNN_EPROP_IN = 0,  /* n_rec x n_in */
    SNN_EPROP_REC = 1, /* n_rec x n_rec */
    SNN_EPROP_OUT = 2, /* n_out x n_rec */
} snn_eprop_group;

typedef struct snn_eprop_params {
    uint32_t n_in, n_rec, n_out;
    uint32_t n_adaptive;       /* the last n_adaptive recurrent neurons are adaptive */
    double dt;                 /* ms */
    double tau_m;              /* ms, recurrent membrane */
    double tau_out;            /* ms, readout membrane (its kappa filters ebar) */
    double v_th;               /* threshold above rest */
    double adapt_tau, adapt_beta; /* ms; threshold increase per unit of a */
    uint32_t t_ref_steps;      /* refractory steps after a spike (psi = 0 then) */
    double psi_height, psi_width; /* pseudo-derivative height and width */
    snn_eprop_surrogate psi_shape; /* its shape; 0 = piecewise linear (default) */
    int regular_spike_arrival; /* 1: an input spike adds W; 0: adds (1-alpha) W */
    int readout_spike_arrival; /* readout's own setting (NEST sets regular_spike_arrival per
                                * model): 0 = as regular_spike_arrival (default), 1 = a spike
                                * adds W (c_o = 1), 2 = adds (1-kappa) W (c_o = 1-kappa) */
    double c_reg, f_target_hz; /* firing-rate regularisation */
    snn_eprop_loss loss;
    snn_eprop_feedback feedback;
    snn_eprop_optimizer optimizer;
    double eta, adam_beta1, adam_beta2, adam_epsilon;
    double w_min, w_max;
    int learn_in, learn_rec, learn_out; /* 1 = learnable, 0 = frozen */
    int no_autapses;           /* keep Wrec_jj = 0 */
    uint32_t update_interval;  /* T steps */
    uint32_t learning_window;  /* last steps of an interval with errors, <= T */
    uint32_t batch_size;       /* intervals per weight update */
    int reset_on_update;       /* reset v, a, r, z, y at each interval start */
    int average_gradient;      /* divide each interval's gradient by learning_window */
    /* continuous timing only (see "Continuous timing" above) */
    snn_eprop_timing timing;
    snn_eprop_reset_mode reset;
    double v_reset;            /* with SNN_EPROP_RESET_TO_VALUE */
    double kappa;              /* ebar filter (no 1-kappa gain) */
    double kappa_reg;          /* rate estimate and ebar_reg filter */
    uint32_t isi_trace_cutoff; /* steps after a presynaptic spike with traces; 0 = no cutoff */
    uint32_t adam_t0;          /* Adam's counter starts adam_t0 steps before step 0 (NEST:
                                * offset_gen + delay_in_rec = 2); readout synapses one more */
    int reset_adapted;         /* interval timing: the reset subtracts the threshold the spike
                                * crossed, v_th + beta a (snnd's rsnn "direct" engine, see
                                * models/rsnn_eprop.h), instead of v_th (NEST); 0 by default */
} snn_eprop_params;

typedef struct snn_eprop snn_eprop;

/* Returns parameters with NEST's sine-wave regression values (tau 30 ms,
 * v_th 0.03, psi 10 x 0.03, c_reg 300, 10 Hz, MSE, random feedback, gradient
 * descent eta 1e-4, bounds +-100, all groups learnable, T = window = 1000,
 * batch 1, reset on, no averaging) and sizes 0: the caller sets the sizes. */
snn_eprop_params snn_eprop_params_default(void);

/* Checks p and allocates a network with the given initial weights (row-major,
 * row = target; NULL = all zero): w_in n_rec x n_in, w_rec n_rec x n_rec,
 * w_out n_out x n_rec, and b_fb n_rec x n_out (required for random feedback,
 * ignored for symmetric). All state starts at 0 and learning is on.
 * Returns 0 and *out, or -SNN_EINVAL naming the bad field, -SNN_ENOMEM;
 * on error nothing is left allocated and *out is NULL. */
int snn_eprop_init(snn_eprop **out, const snn_eprop_params *p, const double *w_in,
                   const double *w_rec, const double *w_out, const double *b_fb,
                   const snn_allocator *a, snn_err *err);

/* Frees e and everything it owns (NULL is fine). */
void snn_eprop_free(snn_eprop *e);

/* One time step. x: n_in input spikes (0/1; non-zero counts as the value).
 * target: n_out values (MSE target or CE target distribution), or NULL to use
 * label (one-hot class label for CE / 1.0 at index label for MSE), or NULL with
 * label < 0 for no target (error 0 this step). out (may be NULL): n_out readout
 * outputs. running_loss (may be NULL): loss summed over the current interval so
 * far. When learning is on, interval timing applies the gradient at the last
 * step of an interval (every batch_size intervals); continuous timing updates
 * the weights every step. Allocates nothing. Returns 0, or
 * -SNN_EINVAL for a NULL e/x or a label out of range. */
int snn_eprop_step(snn_eprop *e, const uint8_t *x, const double *target, int label,
                   double *out, double *running_loss);

/* Turns learning on (1) or off (0). Off: no traces, no gradients, no updates;
 * the forward pass, outputs and loss are unchanged (inference only). */
void snn_eprop_set_learning(snn_eprop *e, int on);

/* Resets neuron state, traces, the interval counter and pending gradients;
 * weights and optimiser moments are kept. */
void snn_eprop_reset(snn_eprop *e);

/* Read-only view of a weight matrix (row-major, row = target); rows/cols if not
 * NULL get its shape. Valid until snn_eprop_free. */
const double *snn_eprop_weights(const snn_eprop *e, snn_eprop_group g, size_t *rows,
                                size_t *cols);

/* Loss of the last completed interval (0 before the first one). */
double snn_eprop_last_loss(const snn_eprop *e);

/* Number of completed intervals since init/reset. */
uint64_t snn_eprop_intervals(const snn_eprop *e);

/* Spikes of the recurrent neurons at the last step (n_rec values 0/1), and the
 * pseudo-derivatives psi of the last step; for tests and monitoring. */
const uint8_t *snn_eprop_spikes(const snn_eprop *e);
const double *snn_eprop_psi(const snn_eprop *e);

#endif
