"""JS against W1 for two Gaussians pulled apart: why the JS divergence gives no gradient.

P = N(0, s^2 I) and Q_theta = N(theta e_1, s^2 I) in 2-D. The second coordinate has the same law
under both and is independent of the first, so every f-divergence and W1 reduce to the 1-D pair
N(0, s^2), N(theta, s^2):

- W1(P, Q_theta) = |theta| exactly (a translation: the shift coupling costs |theta|, and
  W1 >= |E_P x - E_Q x| = |theta| by Kantorovich-Rubinstein with the 1-Lipschitz f(x) = x_1);
- KL(P || Q_theta) = theta^2 / (2 s^2) (closed form);
- JS(P, Q_theta) = KL(P || M)/2 + KL(Q || M)/2, M = (P + Q)/2, in nats, by adaptive quadrature
  (scipy.integrate.quad, absolute error 1e-12, in log space), rising to log 2 once the
  supports barely overlap (theta >> s): from there its derivative in theta, the gradient a
  generator would follow, is ~0, while W1's stays 1 (Arjovsky, Chintala & Bottou 2017, Example 1
  and Fig. 1, where P and Q are segments and JS jumps straight to log 2).
"""
from __future__ import annotations

import math

import numpy as np


def js_gaussians(theta: float, s: float) -> float:
    """JS(N(0, s^2), N(theta, s^2)) in nats (0 <= JS <= log 2)."""
    from scipy import integrate, stats

    theta = abs(float(theta))
    if theta == 0:
        return 0.0
    p, q = stats.norm(0, s), stats.norm(theta, s)

    def integrand(x: float) -> float:
        lp, lq = p.logpdf(x), q.logpdf(x)
        lm = np.logaddexp(lp, lq) - math.log(2)
        return 0.5 * (math.exp(lp) * (lp - lm) + math.exp(lq) * (lq - lm))

    lo, hi = -12 * s, theta + 12 * s  # beyond 12 s both densities are below 1e-31
    value, _ = integrate.quad(integrand, lo, hi, points=[0.0, theta / 2, theta], epsabs=1e-12, epsrel=1e-10, limit=200)
    return min(max(value, 0.0), math.log(2))


def curves(thetas: list[float] | np.ndarray, s: float = 0.1) -> dict:
    """JS, KL and W1 along ``thetas`` and their derivatives in theta (JS's by central differences
    of step s/100; KL's and W1's in closed form)."""
    thetas = [float(t) for t in thetas]
    h = s / 100
    js = [js_gaussians(t, s) for t in thetas]
    d_js = [(js_gaussians(t + h, s) - js_gaussians(t - h, s)) / (2 * h) if t > h else
            (js_gaussians(t + h, s) - js_gaussians(t, s)) / h for t in thetas]
    return {
        "theta": thetas, "sigma": s, "js": js, "w1": [abs(t) for t in thetas],
        "kl": [t * t / (2 * s * s) for t in thetas],
        "d_js": d_js, "d_w1": [math.copysign(1.0, t) if t else 1.0 for t in thetas],
        "d_kl": [t / (s * s) for t in thetas],
        "provenance": {"P": "N(0, s^2 I_2)", "Q": "N((theta, 0), s^2 I_2)", "units": "nats",
                       "js": "scipy.integrate.quad, epsabs 1e-12", "w1": "exact: |theta|", "kl": "exact: theta^2/(2 s^2)",
                       "d_js": f"central difference, step {h:g}"},
    }
