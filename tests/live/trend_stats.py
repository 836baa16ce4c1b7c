"""The statistics heapinspect trend decides on, computed here from their
definitions with Python's own arithmetic, for the tests to hold trend's
answers against (README "heapinspect trend").  Nothing is taken from
heapinspect: the t distribution's tail is Student's density integrated
numerically, Kendall's S is counted over every pair, the sign test is
the binomial sum itself.
"""

import math

ALPHA = 0.001
GROWTH_OF_HEAP = 0.01
SWING_OF_HEAP = 0.10


def t_sf(t, df):
    """P(T > t), Student's t with df degrees of freedom (df >= 1): the
    density integrated by Simpson's rule, over x = t / u for the tail."""
    if t == math.inf:
        return 0.0
    if t < 0:
        return 1.0 - t_sf(-t, df)
    c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - \
        0.5 * math.log(df * math.pi)

    def dens(x):
        return math.exp(c - (df + 1) / 2 * math.log1p(x * x / df))

    n = 20000
    if t < 1:
        # 1/2 minus the density from 0 to t: no tail to lose here.
        h = t / n
        s = sum(dens(i * h) * (1 if i in (0, n) else 4 if i % 2 else 2)
                for i in range(n + 1))
        return 0.5 - s * h / 3
    # The tail from t: x = t / u, dx = t / u^2 du, u from 0 to 1.
    h = 1.0 / n
    s = 0.0
    for i in range(1, n + 1):
        u = i * h
        s += dens(t / u) * t / (u * u) * (1 if i == n else 4 if i % 2
                                          else 2)
    return s * h / 3


def norm_sf(z):
    return 0.5 * math.erfc(z / math.sqrt(2))


def sign_sf(k, other):
    """P(X >= k), X binomial(k + other, 1/2)."""
    m = k + other
    if k == 0:
        return 1.0
    return sum(math.comb(m, j) for j in range(k, m + 1)) / 2 ** m


def fit(x, y):
    """Least squares of y on x with the tests of trend; a dict."""
    n = len(x)
    mx = sum(a - x[0] for a in x) / n
    my = sum(y) / n
    sxx = sum((a - x[0] - mx) ** 2 for a in x)
    sxy = sum((a - x[0] - mx) * (b - my) for a, b in zip(x, y))
    syy = sum((b - my) ** 2 for b in y)
    b = sxy / sxx
    e = [yy - (my + b * (xx - x[0] - mx)) for xx, yy in zip(x, y)]
    ssr = sum(v * v for v in e)
    if ssr <= syy * 1e-24:
        ssr = 0.0
    r1 = sum(e[i] * e[i - 1] for i in range(1, n)) / ssr if ssr else 0.0
    neff = n * (1 - r1) / (1 + r1) if r1 > 0 else n
    df = neff - 2
    if syy == 0:
        t, pu, pd = 0.0, 1.0, 1.0
    elif ssr == 0:
        t = math.inf if b > 0 else -math.inf
        pu, pd = (0.0, 1.0) if b > 0 else (1.0, 0.0)
    elif df < 1:
        t, pu, pd = None, 1.0, 1.0
    else:
        t = b / math.sqrt(ssr / df / sxx)
        pu, pd = t_sf(t, df), t_sf(-t, df)
    s = 0
    for i in range(n):
        for j in range(i + 1, n):
            s += (y[j] > y[i]) - (y[j] < y[i])
    groups = {}
    for v in y:
        groups[v] = groups.get(v, 0) + 1
    var = (n * (n - 1) * (2 * n + 5) -
           sum(g * (g - 1) * (2 * g + 5) for g in groups.values())) / 18
    if var > 0:
        z = (s - (s > 0) + (s < 0)) / math.sqrt(var)
        mku, mkd = norm_sf(z), norm_sf(-z)
    else:
        z, mku, mkd = 0.0, 1.0, 1.0
    rose = sum(1 for i in range(1, n) if y[i] > y[i - 1])
    fell = sum(1 for i in range(1, n) if y[i] < y[i - 1])
    return {"slope": b, "r2": sxy * sxy / (sxx * syy) if syy else 1.0,
            "r1": r1, "neff": neff, "df": df, "t": t, "p_line_up": pu,
            "p_line_down": pd, "s": s, "z": z, "p_mk_up": mku,
            "p_mk_down": mkd, "rose": rose, "fell": fell,
            "p_sign_up": sign_sf(rose, fell),
            "p_sign_down": sign_sf(fell, rose),
            "change": y[-1] - y[0], "fitted": b * (x[-1] - x[0])}


def classify(f, grow_min, swing_min):
    """trend's state of one figure, from its fit (README)."""
    mk_up, mk_down = f["p_mk_up"] < ALPHA, f["p_mk_down"] < ALPHA
    line_up = f["p_line_up"] < ALPHA and f["slope"] > 0
    line_down = f["p_line_down"] < ALPHA and f["slope"] < 0
    sign_up, sign_down = f["p_sign_up"] < ALPHA, f["p_sign_down"] < ALPHA
    if mk_up and (line_up or (sign_up and f["change"] > 0)):
        size = f["fitted"] if line_up else f["change"]
        return "grows" if size >= grow_min else "grows-slightly"
    if mk_down and (line_down or (sign_down and f["change"] < 0)):
        size = -f["fitted"] if line_down else -f["change"]
        return "falls" if size >= grow_min else "falls-slightly"
    if mk_up and f["change"] > 0:
        return "rose" if f["change"] >= grow_min else "rose-slightly"
    if mk_down and f["change"] < 0:
        return "fell" if -f["change"] >= grow_min else "fell-slightly"
    if f["change"] != 0 and abs(f["change"]) >= swing_min:
        return "swings"
    return "flat"


def margins(f, grow_min, swing_min):
    """Why a figure's state could flip with rounding: every p-value and
    size too near its threshold (the test's cases stay clear of them)."""
    near = []
    for k in ("p_line_up", "p_line_down", "p_mk_up", "p_mk_down",
              "p_sign_up", "p_sign_down"):
        if ALPHA / 3 < f[k] < ALPHA * 3:
            near.append("%s %.3g" % (k, f[k]))
    for k in ("change", "fitted"):
        for lim in (grow_min, swing_min):
            if lim and 0.8 * lim < abs(f[k]) < 1.25 * lim:
                near.append("%s %.0f near %.0f" % (k, f[k], lim))
    return near


def verdict(states):
    """trend's verdict from the states of live, free, mmapped and
    outside-heap bytes (outside may be missing), with the findings'
    fitted slopes deciding among kinds: states is {figure: (state,
    slope)}."""
    kinds = {"live_bytes": "leak", "free_bytes": "fragmentation",
             "outside_heap_bytes": "outside-heap"}
    grows = [(slope, kinds[k]) for k, (st, slope) in states.items()
             if k in kinds and st == "grows"]
    if grows:
        return max(grows)[1]
    counted = [st for k, (st, _) in states.items() if k in kinds]
    if "rose" in counted:
        return "growing"
    if "falls" in counted or "fell" in counted:
        return "shrinking"
    if "swings" in counted:
        return "fluctuating"
    return "steady"
