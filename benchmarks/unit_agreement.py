"""RHEL-vs-BPTT gradient agreement of single HRUs, per estimator, in float32 and float64, at the default epsilon.

Run: python benchmarks/unit_agreement.py [--length 256] > benchmarks/unit_agreement.md

For every unit (linear real/complex, nonlinear, a user-written coupled nonlinear energy) and every RHEL estimator,
the worst relative error ||g_RHEL - g_BPTT|| / ||g_BPTT|| over all parameter leaves and the input gradient, and the
smallest cosine similarity, are printed as a markdown table; a last row per unit runs the central estimator with a
re-synchronised echo (``RESYNC``). The echo's return check is off (``check="off"``) so that the float32 rows of the
chaotic quartic energy, which it rejects, are measured too.
"""

import argparse
import platform

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import rhel  # noqa: E402


def coupled_unit(dtype):
    k = jax.random.split(jax.random.key(3), 3)
    a = 0.3 * jax.random.normal(k[0], (8, 8), dtype)
    params = {
        "inv_mass": jnp.eye(8, dtype=dtype) + a @ a.T,
        "stiffness": jnp.eye(8, dtype=dtype) + 0.2 * (a + a.T),
        "B": jax.random.normal(k[2], (8, 4), dtype),
    }

    def kinetic(p, th):
        return 0.5 * p @ th["inv_mass"] @ p

    def potential(q, th, u):
        return 0.5 * q @ th["stiffness"] @ q + 0.25 * jnp.sum(q**4) - q @ (th["B"] @ u)

    return rhel.EnergyHRU(
        kinetic,
        potential,
        params,
        state_size=8,
        in_size=4,
        out_size=4,
        step=0.1,
        train_step=True,
        dtype=dtype,
        key=jax.random.key(0),
    )


UNITS = {
    "LinearHRU (real)": lambda dt: rhel.LinearHRU(4, 32, complex_state=False, dtype=dt, key=jax.random.key(0)),
    "LinearHRU (complex)": lambda dt: rhel.LinearHRU(4, 32, dtype=dt, key=jax.random.key(0)),
    "NonlinearHRU": lambda dt: rhel.NonlinearHRU(4, 32, step=0.1, dtype=dt, key=jax.random.key(0)),
    "EnergyHRU (coupled, quartic)": coupled_unit,
}


#: The re-synchronised echo (every unit, both dtypes, the default epsilon): re-anchored every 4 steps, its differences
#: renormalised where a nonlinear energy amplifies them.
RESYNC = rhel.RHEL(resync_every=4, check="off")


@eqx.filter_jit
def grads(unit, method, u, target):
    def loss(unit, u):
        return jnp.mean((jax.vmap(lambda x: unit(x, gradient=method))(u) - target) ** 2)

    return eqx.filter_grad(loss)(unit, u), jax.grad(loss, argnums=1)(unit, u)


def compare(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    errs, coss = [], []
    for x, y in zip(la, lb, strict=True):
        x, y = x.ravel().astype(jnp.float64), y.ravel().astype(jnp.float64)
        ny = jnp.linalg.norm(y)
        if float(ny) == 0:
            continue
        errs.append(float(jnp.linalg.norm(x - y) / ny))
        coss.append(float(jnp.dot(x, y) / (jnp.linalg.norm(x) * ny)))
    return max(errs), min(coss)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    print(
        f"Sequence length {args.length}, batch {args.batch}; jax {jax.__version__}, "
        f"{platform.processor() or platform.machine()}, "
        f"backend {jax.default_backend()}. Worst relative error over parameter leaves and the input gradient "
        "(min cosine in brackets), RHEL at its default epsilon vs BPTT in the same precision.\n"
    )
    print("| unit | estimator | float64 | float32 | eps (f64 / f32) |")
    print("|---|---|---|---|---|")
    for name, make in UNITS.items():
        for est in ("central", "one_sided", "richardson", "resync"):
            row, eps = [], []
            for dtype in (jnp.float64, jnp.float32):
                unit = make(dtype)
                u = jax.random.normal(jax.random.key(1), (args.batch, args.length, unit.in_size), dtype)
                target = jax.random.normal(jax.random.key(2), (args.batch, args.length, unit.out_size), dtype)
                method = RESYNC if est == "resync" else rhel.RHEL(estimator=est, check="off")
                err, cos = compare(grads(unit, method, u, target), grads(unit, rhel.BPTT(), u, target))
                row.append(f"{err:.1e} ({cos:.7f})")
                eps.append(method.epsilon_for(dtype, quadratic=unit.energy.linear_coefficients is not None))
            label = f"central, resync_every={RESYNC.resync_every}" if est == "resync" else est
            print(f"| {name} | {label} | {row[0]} | {row[1]} | {eps[0]:.2g} / {eps[1]:.2g} |", flush=True)


if __name__ == "__main__":
    main()
