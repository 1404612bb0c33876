"""``rhel demo oscillators | fput | damping | noise``: figures (PNG, Agg backend) and a printed summary.

* ``oscillators`` -- the paper's toy (Eq. 8): forward trajectory, the two nudged echoes against the reversed
  forward run, the running RHEL gradient accumulator for one coupling k_ij over echo time with the adjoint and
  autodiff values as references (cf. the authors' published demonstration), the training curve RHEL vs BPTT,
  and an animation (Pillow GIF, else ffmpeg MP4, else skipped with a message).
* ``fput`` -- the same training on a nonlinear FPUT-beta chain.
* ``damping`` -- gradient error against friction gamma (paper App. A.3.1).
* ``noise`` -- gradient cosine similarity against read-out noise and parameter drift.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from rhel.physics.systems import PhysicsError

__all__ = ["DemoArgumentError", "demo_oscillators", "demo_fput", "demo_damping", "demo_noise"]


class DemoArgumentError(PhysicsError):
    """A demo argument that cannot work (a negative epsilon or duration, no time steps, an unknown method)."""


def _setup(**arguments):
    """Check the demo's arguments (by their command-line names) and switch JAX to float64."""
    import jax

    from rhel.training.cli_options import RHEL_METHODS

    positive = {"epsilon": "--epsilon", "T": "--duration", "lr": "--lr"}
    at_least_one = {"n_steps": "--time-steps", "steps": "--steps", "repeats": "--repeats"}
    for name, value in arguments.items():
        if name in positive and not (np.isfinite(value) and value > 0):
            raise DemoArgumentError(f"{positive[name]} must be a positive number, got {value!r}")
        if name in at_least_one and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise DemoArgumentError(f"{at_least_one[name]} must be an integer >= 1, got {value!r}")
        if name == "gradient" and value not in RHEL_METHODS:
            raise DemoArgumentError(f"--gradient must be one of {', '.join(RHEL_METHODS)}, got {value!r}")
    jax.config.update("jax_enable_x64", True)


def _rhel(gradient: str, epsilon: float, **kwargs):
    """The ``rhel.RHEL`` object of a method name of :data:`rhel.training.cli_options.RHEL_METHODS` (absolute ``epsilon``
    unless ``kwargs`` say otherwise)."""
    from rhel.gradients.methods import GRADIENT_METHODS
    from rhel.gradients.rhel import RHEL

    return RHEL(epsilon=epsilon, estimator=GRADIENT_METHODS[gradient].estimator, **kwargs)


def _blame(error: PhysicsError, argument: str, value: float, dt: float, what: str) -> PhysicsError:
    """A non-finite state met after the time step passed its check at the initial parameters is the fault of
    ``argument`` (``--lr`` in training, ``--epsilon`` in the nudged echoes), not of the time step: say so."""
    if "non-finite" not in str(error):
        return error
    return PhysicsError(
        f"{what} diverged with {argument} {value:g} (the time step dt = {dt:g} is stable at the initial "
        f"parameters); reduce {argument}"
    )


def _gradients(task, epsilon, adjoint_steps, gradient="rhel"):
    from rhel.physics.adjoint import adjoint_gradient
    from rhel.physics.echo import autodiff_gradient, rhel_gradient

    args = (task.system, task.theta0, task.x0, task.inputs, task.targets)
    _, g_ad, gx_ad = autodiff_gradient(*args, dt=task.dt)  # first: a failure here is the time step's
    try:
        loss, g_rhel, gx_rhel = rhel_gradient(*args, dt=task.dt, gradient=_rhel(gradient, epsilon))
    except PhysicsError as error:
        raise _blame(error, "--epsilon", epsilon, task.dt, "the nudged echoes") from error
    out = adjoint_gradient(
        task.system,
        task.theta0,
        task.x0,
        task.drive,
        task.target,
        T=task.T,
        n_steps=adjoint_steps,
        record=True,
    )
    return loss, (g_rhel, gx_rhel), (g_ad, gx_ad), out


def _agreement_lines(g_rhel, g_ad, g_adj) -> list[str]:
    from rhel.physics.studies import cosine, relative_error

    c_ad, e_ad = cosine(g_rhel, g_ad), relative_error(g_rhel, g_ad)
    c_adj, e_adj = cosine(g_rhel, g_adj), relative_error(g_rhel, g_adj)
    return [
        f"  RHEL vs autodiff : cosine {c_ad:.9f}, relative error {e_ad:.2e}",
        f"  RHEL vs adjoint  : cosine {c_adj:.9f}, relative error {e_adj:.2e}",
        f"  autodiff vs adj. : relative error {relative_error(g_ad, g_adj):.2e} (time discretization)",
    ]


def _train_both(task, *, steps, lr, epsilon, gradient):
    """Train the task's parameters with the RHEL method ``gradient`` and with BPTT; a divergence names ``--lr``."""
    from rhel.gradients.bptt import BPTT
    from rhel.physics.train import train

    args = (task.system, task.theta0, task.x0, task.inputs, task.targets)
    try:
        res_rhel = train(*args, dt=task.dt, steps=steps, lr=lr, gradient=_rhel(gradient, epsilon))
        res_bptt = train(*args, dt=task.dt, steps=steps, lr=lr, gradient=BPTT())
    except PhysicsError as error:
        raise _blame(error, "--lr", lr, task.dt, "training") from error
    return res_rhel, res_bptt


def _training_figure(path, res_rhel, res_bptt, title):
    from rhel.figures import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(6, 4))
    ax.semilogy(res_bptt.losses, lw=3, alpha=0.5, label="BPTT (jax.grad through the simulation)")
    ax.semilogy(res_rhel.losses, "--", lw=1.5, label="RHEL (echoes)")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("loss  ∫ ½(φ_out − y)² dt")
    ax.set_title(title)
    ax.legend()
    save_figure(fig, path, dpi=110)


def _animate(path_stem: Path, traj, echo, n_frames=80) -> str | None:
    """Forward run then the un-nudged echo (retracing it), as masses on springs. Returns the file written."""
    from matplotlib import animation

    from rhel.figures import pyplot

    plt = pyplot()
    try:
        import PIL  # noqa: F401

        writer, path = animation.PillowWriter(fps=20), path_stem.with_suffix(".gif")
    except ImportError:
        if shutil.which("ffmpeg") is None:
            print("  animation skipped: neither Pillow nor ffmpeg is available")
            return None
        writer, path = animation.FFMpegWriter(fps=20), path_stem.with_suffix(".mp4")
    fwd = np.asarray(traj.phi)
    ech = np.asarray(echo.phi[1])  # the un-nudged echo of a one-sided record
    n = fwd.shape[1]
    idx_f = np.linspace(0, len(fwd) - 1, n_frames // 2).astype(int)
    idx_e = np.linspace(0, len(ech) - 1, n_frames // 2).astype(int)
    frames = [("forward", fwd[i], traj.t[i]) for i in idx_f] + [
        ("echo (π → −π, u reversed)", ech[i], echo.s[i]) for i in idx_e
    ]
    lim = 1.2 * max(np.abs(fwd).max(), 1e-6)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    xs = np.arange(n)
    (line,) = ax.plot(xs, fwd[0], "-", color="0.7", zorder=1)
    dots = ax.scatter(xs, fwd[0], s=120, c=["C3" if i == 0 else "C2" if i == 3 else "C0" for i in range(n)], zorder=2)
    text = ax.set_title("")
    ax.set_ylim(-lim, lim)
    ax.set_xticks(xs, [f"{i + 1}" for i in xs])
    ax.set_xlabel("oscillator (red: input, green: output)")
    ax.set_ylabel("φ_i")
    fig.tight_layout()

    def update(k):
        label, phi, t = frames[k]
        line.set_ydata(phi)
        dots.set_offsets(np.c_[xs, phi])
        text.set_text(f"{label}, t = {t:5.2f}")
        return line, dots, text

    anim = animation.FuncAnimation(fig, update, frames=len(frames), blit=False)
    anim.save(str(path), writer=writer, dpi=60)
    plt.close(fig)
    return str(path)


def demo_oscillators(
    out: str | Path = "runs/demo-oscillators",
    *,
    seed: int = 0,
    steps: int = 150,
    lr: float = 0.05,
    epsilon: float = 1e-3,
    T: float = 20.0,
    n_steps: int = 400,
    echo_epsilon: float = 0.2,
    animate: bool = True,
    gradient: str = "rhel",
) -> dict:
    """Run the six-oscillator demonstration; write figures into ``out`` and return the summary numbers.

    ``gradient`` is the RHEL method trained against BPTT (``rhel``, ``rhel-one-sided``, ``rhel-richardson``);
    impossible arguments raise :class:`DemoArgumentError` naming them.
    """
    t_start = time.perf_counter()
    _setup(epsilon=epsilon, T=T, n_steps=n_steps, steps=steps, lr=lr, gradient=gradient)
    import jax

    from rhel.figures import pyplot, save_figure
    from rhel.gradients.rhel import RHEL
    from rhel.physics.echo import echo_trajectory, simulate
    from rhel.physics.studies import cosine, relative_error
    from rhel.physics.systems import coupling_pairs
    from rhel.physics.train import oscillator_task

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task = oscillator_task(T=T, n_steps=n_steps, seed=seed)
    system, theta0 = task.system, task.theta0
    print(f"rhel demo oscillators: {system.name}, T = {T:g}, dt = {task.dt:g}, epsilon = {epsilon:g}, seed = {seed}")
    plt = pyplot()

    loss0, (g_rhel, _), (g_ad, _), (_, g_adj, _, running_adj) = _gradients(
        task, epsilon, adjoint_steps=10 * n_steps, gradient=gradient
    )
    lines = ["gradient agreement at the initial parameters (all 27 physical parameters):"]
    lines += _agreement_lines(g_rhel, g_ad, g_adj)

    # Figure 1: forward trajectory.
    traj = simulate(system, theta0, task.x0, task.inputs, task.targets, dt=task.dt)
    fig, axes = plt.subplots(3, 1, figsize=(7, 6.5), sharex=True)
    axes[0].plot(traj.t_mid, task.inputs, color="C3")
    axes[0].set_ylabel("input u(t)\n(force on osc. 1)")
    for i in range(system.n_dof):
        axes[1].plot(traj.t, traj.phi[:, i], lw=1, label=f"φ{i + 1}")
    axes[1].set_ylabel("positions φ_i")
    axes[1].legend(ncol=6, fontsize=7, loc="upper right")
    axes[2].plot(traj.t_mid, task.targets, "k", lw=2, alpha=0.4, label="target y (teacher's φ4)")
    axes[2].plot(traj.t_mid, traj.phi_mid[:, 3], "C2", label="student φ4 (before training)")
    axes[2].set_ylabel("output")
    axes[2].set_xlabel("t")
    axes[2].legend(fontsize=8)
    fig.suptitle("Forward pass: six coupled oscillators (paper Eq. 8)")
    save_figure(fig, out / "forward.png", dpi=110)

    # Figure 2: the two echoes vs the reversed forward run (large eps for visibility).
    rec = echo_trajectory(
        system, theta0, task.x0, task.inputs, task.targets, dt=task.dt, gradient=RHEL(epsilon=echo_epsilon)
    )
    rev = np.asarray(traj.phi[::-1, 3])
    fig, axes = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    axes[0].plot(rec.s, rev, "k", lw=3, alpha=0.3, label="forward φ4(T − s), reversed")
    axes[0].plot(rec.s, rec.phi[0, :, 3], "C0", lw=1, label=f"echo, +ε = {echo_epsilon:g}")
    axes[0].plot(rec.s, rec.phi[1, :, 3], "C1", lw=1, ls="--", label=f"echo, −ε = {-echo_epsilon:g}")
    axes[0].set_ylabel("φ4")
    axes[0].legend(fontsize=8)
    axes[1].plot(rec.s, (rec.phi[0, :, 3] - rec.phi[1, :, 3]) / (2 * echo_epsilon), "C4")
    axes[1].set_ylabel("(φ4(+ε) − φ4(−ε)) / 2ε")
    axes[1].set_xlabel("echo time s")
    fig.suptitle("Echoes: momentum flipped, input replayed in reverse, nudged by ±ε∇ℓ")
    save_figure(fig, out / "echoes.png", dpi=110)

    # Figure 3: running gradient accumulator for one coupling (physical units dL/dk_ij = dL/dlog k_ij / k_ij).
    pairs = coupling_pairs(system.n_dof)
    c = int(np.argmax(np.abs(np.asarray(g_ad["kc"]))))
    i, j = pairs[c]
    k_ij = float(np.exp(theta0["kc"][c]))
    rec_small = echo_trajectory(
        system, theta0, task.x0, task.inputs, task.targets, dt=task.dt, gradient=_rhel(gradient, epsilon)
    )
    run_rhel = np.asarray(rec_small.running["kc"][:, c]) / k_ij
    s_adj = np.arange(1, 10 * n_steps + 1) * (T / (10 * n_steps))
    run_adj = np.asarray(running_adj["kc"][:, c]) / k_ij
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(s_adj, run_adj, "k", lw=3, alpha=0.3, label="adjoint (RK4), running ∫ g_θ ds")
    ax.plot(rec_small.s, run_rhel, "C0", lw=1.2, label="RHEL, running −(1/2ε)∫(∂H/∂k_ij[+ε] − ∂H/∂k_ij[−ε]) ds")
    ax.axhline(float(g_ad["kc"][c]) / k_ij, color="C3", ls="--", lw=1, label="autodiff (BPTT) dL/dk_ij")
    ax.axhline(float(g_adj["kc"][c]) / k_ij, color="k", ls=":", lw=1, label="adjoint dL/dk_ij")
    ax.set_xlabel("echo time s")
    ax.set_ylabel(f"dL/dk_{i + 1}{j + 1} (running)")
    ax.set_title(f"Gradient accumulator for the coupling k_{i + 1}{j + 1}")
    ax.legend(fontsize=8)
    save_figure(fig, out / "gradient_accumulator.png", dpi=110)
    lines.append(
        f"  coupling k_{i + 1}{j + 1}: RHEL {run_rhel[-1]:.6e}, autodiff {float(g_ad['kc'][c]) / k_ij:.6e}, "
        f"adjoint {float(g_adj['kc'][c]) / k_ij:.6e}"
    )

    # Figure 4: training, RHEL vs BPTT.
    res_rhel, res_bptt = _train_both(task, steps=steps, lr=lr, epsilon=epsilon, gradient=gradient)
    _training_figure(out / "training.png", res_rhel, res_bptt, f"Training the 27 physical parameters ({steps} steps)")
    trained = simulate(system, res_rhel.theta, task.x0, task.inputs, task.targets, dt=task.dt)
    lines.append(
        f"training ({steps} Adam steps, lr {lr:g}): loss {res_rhel.losses[0]:.4e}"
        f" -> RHEL {res_rhel.losses[-1]:.4e}"
        f" (x{res_rhel.losses[0] / res_rhel.losses[-1]:.0f}), BPTT {res_bptt.losses[-1]:.4e}"
        f" (x{res_bptt.losses[0] / res_bptt.losses[-1]:.0f}); max |RHEL − BPTT| / loss along the curve "
        f"{np.max(np.abs(res_rhel.losses - res_bptt.losses) / res_bptt.losses):.1e}"
    )

    files = ["forward.png", "echoes.png", "gradient_accumulator.png", "training.png"]
    if animate:
        rec0 = echo_trajectory(
            system,
            res_rhel.theta,
            task.x0,
            task.inputs,
            task.targets,
            dt=task.dt,
            gradient=RHEL(epsilon=epsilon, estimator="one_sided"),
        )
        written = _animate(out / "animation", trained, rec0)
        if written:
            files.append(Path(written).name)
    for line in lines:
        print(line)
    wall = time.perf_counter() - t_start
    print(f"wrote {', '.join(files)} to {out}/ in {wall:.1f} s")
    return {
        "cosine_autodiff": cosine(g_rhel, g_ad),
        "cosine_adjoint": cosine(g_rhel, g_adj),
        "rel_error_autodiff": relative_error(g_rhel, g_ad),
        "rel_error_adjoint": relative_error(g_rhel, g_adj),
        "loss_before": float(loss0),
        "loss_after_rhel": float(res_rhel.losses[-1]),
        "loss_after_bptt": float(res_bptt.losses[-1]),
        "files": files,
        "wall_s": wall,
        "theta_init": jax.device_get(theta0),
    }


def demo_fput(
    out="runs/demo-fput", *, seed=0, steps=150, lr=0.05, epsilon=1e-3, T=20.0, n_steps=400, gradient="rhel"
) -> dict:
    """Train an FPUT-beta chain (nonlinear springs) with the RHEL method ``gradient`` and BPTT; gradient agreement
    and training curve."""
    t_start = time.perf_counter()
    _setup(epsilon=epsilon, T=T, n_steps=n_steps, steps=steps, lr=lr, gradient=gradient)
    from rhel.physics.studies import cosine, relative_error
    from rhel.physics.train import fput_task

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task = fput_task(T=T, n_steps=n_steps, seed=seed)
    print(f"rhel demo fput: {task.system.name}, T = {T:g}, dt = {task.dt:g}, epsilon = {epsilon:g}, seed = {seed}")
    _, (g_rhel, _), (g_ad, _), (_, g_adj, _, _) = _gradients(
        task, epsilon, adjoint_steps=10 * n_steps, gradient=gradient
    )
    lines = ["gradient agreement at the initial parameters:"] + _agreement_lines(g_rhel, g_ad, g_adj)
    res_rhel, res_bptt = _train_both(task, steps=steps, lr=lr, epsilon=epsilon, gradient=gradient)
    _training_figure(out / "training.png", res_rhel, res_bptt, f"FPUT-β chain: training k_b, β_b ({steps} steps)")
    lines.append(
        f"training: loss {res_rhel.losses[0]:.4e} -> RHEL {res_rhel.losses[-1]:.4e}, BPTT {res_bptt.losses[-1]:.4e}"
    )
    for line in lines:
        print(line)
    print(f"wrote training.png to {out}/ in {time.perf_counter() - t_start:.1f} s")
    return {
        "cosine_autodiff": cosine(g_rhel, g_ad),
        "rel_error_autodiff": relative_error(g_rhel, g_ad),
        "rel_error_adjoint": relative_error(g_rhel, g_adj),
        "loss_before": float(res_rhel.losses[0]),
        "loss_after_rhel": float(res_rhel.losses[-1]),
        "loss_after_bptt": float(res_bptt.losses[-1]),
    }


def demo_damping(out="runs/demo-damping", *, seed=0, epsilon=1e-3, gradient="rhel") -> dict:
    """Gradient error of the RHEL method ``gradient`` against the damped system's true gradient, vs friction gamma
    (App. A.3.1)."""
    _setup(epsilon=epsilon, gradient=gradient)
    from rhel.figures import pyplot, save_figure
    from rhel.physics.studies import damping_study
    from rhel.physics.train import oscillator_task

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gammas = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)
    res = damping_study(gammas, task=oscillator_task(seed=seed), gradient=_rhel(gradient, epsilon))
    g = res["gamma"]
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4))
    for mode, style in (("reversed", "o-"), ("physical", "s--")):
        label = "anti-damped echo (retraces)" if mode == "reversed" else "physical echo (keeps dissipating)"
        axes[0].loglog(g[1:], res[mode]["rel_error"][1:], style, label=label)
        axes[1].semilogx(g[1:], res[mode]["cosine"][1:], style, label=label)
    axes[0].axhline(res["reversed"]["rel_error"][0], color="k", ls=":", label="γ = 0 (O(ε²) bias only)")
    axes[0].set_xlabel("friction γ")
    axes[0].set_ylabel("‖g_RHEL − g_true‖ / ‖g_true‖")
    axes[1].set_xlabel("friction γ")
    axes[1].set_ylabel("cosine(g_RHEL, g_true)")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("RHEL needs a non-dissipative system: error vs damping (six oscillators)")
    save_figure(fig, out / "damping.png", dpi=110)
    print("gamma       rel.error(anti-damped echo)  rel.error(physical echo)")
    for k in range(len(g)):
        print(f"{g[k]:<10.1e}  {res['reversed']['rel_error'][k]:<27.3e}  {res['physical']['rel_error'][k]:.3e}")
    print(f"wrote damping.png to {out}/")
    return res


def demo_noise(out="runs/demo-noise", *, seed=0, repeats=5) -> dict:
    """Cosine similarity of RHEL gradients vs read-out noise and parameter drift, for several epsilon."""
    _setup(repeats=repeats)
    from rhel.figures import pyplot, save_figure
    from rhel.physics.studies import noise_study
    from rhel.physics.train import oscillator_task

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = noise_study(task=oscillator_task(seed=seed), repeats=repeats, seed=seed)
    lv = res["levels"]
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4), sharey=True)
    titles = {
        "readout": "read-out noise on ∇θH (relative σ)",
        "drift": "parameter drift between passes (relative δ)",
    }
    for ax, kind in zip(axes, ("readout", "drift"), strict=True):
        for i, eps in enumerate(res["epsilon"]):
            m, s = res[kind]["mean"][i], res[kind]["std"][i]
            ax.semilogx(lv, m, "o-", label=f"ε = {eps:g}")
            ax.fill_between(lv, m - s, m + s, alpha=0.2)
        ax.axhline(0.99, color="k", ls=":", lw=1)
        ax.set_xlabel(titles[kind])
        ax.legend(fontsize=8)
    axes[0].set_ylabel("cosine(g_RHEL, g_exact)")
    axes[0].set_ylim(-0.2, 1.05)
    fig.suptitle(f"Device imperfections (six oscillators, mean ± std over {repeats} seeds)")
    save_figure(fig, out / "noise.png", dpi=110)
    for kind in ("readout", "drift"):
        print(f"{kind}: largest level with mean cosine > 0.99")
        for i, eps in enumerate(res["epsilon"]):
            ok = lv[res[kind]["mean"][i] > 0.99]
            print(f"  eps = {eps:<6g}: {ok.max() if ok.size else 'none':}")
    print(f"wrote noise.png to {out}/")
    return res
