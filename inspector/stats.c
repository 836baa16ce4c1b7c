/* SPDX-License-Identifier: MIT */
/*
 * The statistics of heapinspect trend (stats.h says which and why).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

/*
 * The continued fraction of I_x(a, b) (DLMF 8.17.22):
 *
 *   I_x(a, b) = x^a (1 - x)^b / (a B(a, b)) * 1 / (1 + d1 / (1 + d2 / ...))
 *
 *   d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
 *   d_{2m}   = m (b - m) x / ((a + 2m - 1)(a + 2m))
 *
 * which converges fast for x < (a + 1) / (a + b + 2); above, the symmetry
 * I_x(a, b) = 1 - I_{1-x}(b, a) brings x below it.  Evaluated by the
 * modified Lentz method (Lentz 1976; Thompson and Barnett 1986).
 */
static double betacf(double a, double b, double x)
{
	const double tiny = 1e-300, eps = 1e-15;
	double c = 1, d = 1 - (a + b) * x / (a + 1), f;

	if (fabs(d) < tiny)
		d = tiny;
	d = 1 / d;
	f = d;
	for (int m = 1; m <= 10000; m++) {
		double num, delta;

		/* d_{2m} */
		num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
		d = 1 + num * d;
		c = 1 + num / c;
		if (fabs(d) < tiny)
			d = tiny;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		f *= d * c;
		/* d_{2m+1} */
		num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
		d = 1 + num * d;
		c = 1 + num / c;
		if (fabs(d) < tiny)
			d = tiny;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		delta = d * c;
		f *= delta;
		if (fabs(delta - 1) < eps)
			break;
	}
	return f;
}

/* x^a (1 - x)^b / (a B(a, b)), from logarithms; y = 1 - x given apart. */
static double beta_front(double a, double b, double x, double y)
{
	return exp(a * log(x) + b * log(y) + lgamma(a + b) - lgamma(a) -
		   lgamma(b)) / a;
}

/* I_x(a, b) with y = 1 - x given exactly by the caller. */
static double betainc_xy(double a, double b, double x, double y)
{
	if (x <= 0)
		return 0;
	if (y <= 0)
		return 1;
	if (x < (a + 1) / (a + b + 2))
		return beta_front(a, b, x, y) * betacf(a, b, x);
	return 1 - beta_front(b, a, y, x) * betacf(b, a, y);
}

double hi_betainc(double a, double b, double x)
{
	if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1))
		return NAN;
	return betainc_xy(a, b, x, 1 - x);
}

double hi_t_sf(double t, double df)
{
	double x, y, tail;

	if (isnan(t) || !(df > 0))
		return NAN;
	if (isinf(t))
		return t > 0 ? 0 : 1;
	/*
	 * P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2); 1 - x is
	 * computed as t^2 / (df + t^2), not by subtraction, so that a small
	 * t keeps its digits.
	 */
	x = df / (df + t * t);
	y = t * t / (df + t * t);
	tail = 0.5 * betainc_xy(df / 2, 0.5, x, y);
	return t >= 0 ? tail : 1 - tail;
}

double hi_norm_sf(double z)
{
	return 0.5 * erfc(z / sqrt(2.0));
}

/*
 * Sort v[0..n) ascending (a merge sort through tmp) and return how many
 * pairs i < j had v[i] > v[j] before: the falling pairs of the series.
 * Equal values are not counted (the merge takes from the left on ties).
 */
static uint64_t sort_count(double *v, double *tmp, size_t n)
{
	uint64_t inv = 0;

	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t i = lo, j = mid, k = lo;

			while (i < mid && j < hi) {
				if (v[i] <= v[j]) {
					tmp[k++] = v[i++];
				} else {
					/* v[j] is below every v[i..mid). */
					inv += mid - i;
					tmp[k++] = v[j++];
				}
			}
			while (i < mid)
				tmp[k++] = v[i++];
			while (j < hi)
				tmp[k++] = v[j++];
		}
		memcpy(v, tmp, n * sizeof(*v));
	}
	return inv;
}

/*
 * Kendall's S of y against its order, in O(n log n) (Knight 1966): with
 * no ties in the order, S = pairs - tied pairs - 2 * falling pairs.  The
 * variance under no trend, corrected for groups of t equal values
 * (Kendall 1975): (n(n-1)(2n+5) - sum t(t-1)(2t+5)) / 18.
 */
static int mann_kendall(const double *y, size_t n, struct hi_fit *f)
{
	double *v = malloc(2 * n * sizeof(*v));
	uint64_t falling, tied = 0;
	double nn = (double)n, var;

	if (!v)
		return -ENOMEM;
	memcpy(v, y, n * sizeof(*v));
	falling = sort_count(v, v + n, n);
	var = nn * (nn - 1) * (2 * nn + 5);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		double t;

		while (j < n && v[j] == v[i])
			j++;
		t = (double)(j - i);
		tied += (uint64_t)(j - i) * (j - i - 1) / 2;
		var -= t * (t - 1) * (2 * t + 5);
		i = j;
	}
	free(v);
	f->mk_s = (int64_t)((uint64_t)n * (n - 1) / 2 - tied) -
		  2 * (int64_t)falling;
	f->mk_var = var / 18;
	if (f->mk_var <= 0) {
		/* Every value equal: no direction at all. */
		f->mk_z = 0;
		f->p_mk_up = f->p_mk_down = 1;
		return 0;
	}
	/* The continuity correction moves S one step towards 0. */
	f->mk_z = (double)(f->mk_s - (f->mk_s > 0) + (f->mk_s < 0)) /
		  sqrt(f->mk_var);
	f->p_mk_up = hi_norm_sf(f->mk_z);
	f->p_mk_down = hi_norm_sf(-f->mk_z);
	return 0;
}

/*
 * P(X >= k) for X binomial(k + other, 1/2): the tail of the binomial is an
 * incomplete beta, P(X >= k) = I_{1/2}(k, m - k + 1) (DLMF 8.17.5).
 */
static double sign_p(unsigned long k, unsigned long other)
{
	if (k == 0)
		return 1;
	return hi_betainc((double)k, (double)other + 1, 0.5);
}

int hi_fit_series(const double *x, const double *y, size_t n,
		  struct hi_fit *out)
{
	long double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0, ssr = 0;
	long double lag = 0, prev = 0;

	memset(out, 0, sizeof(*out));
	if (n < 3)
		return -EINVAL;
	for (size_t i = 1; i < n; i++) {
		if (!(x[i] > x[i - 1]))
			return -EINVAL;
	}
	out->n = n;
	/* The means first, so that large byte counts do not cancel. */
	for (size_t i = 0; i < n; i++) {
		mx += x[i] - x[0];
		my += y[i];
	}
	mx /= n;
	my /= n;
	for (size_t i = 0; i < n; i++) {
		long double dx = x[i] - x[0] - mx, dy = y[i] - my;

		sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
		if (i > 0) {
			out->intervals++;
			out->rose += y[i] > y[i - 1];
			out->fell += y[i] < y[i - 1];
		}
	}
	out->slope = (double)(sxy / sxx);
	out->intercept = (double)(my - sxy / sxx * mx);
	/* The residuals themselves, not syy - b sxy, which cancels. */
	for (size_t i = 0; i < n; i++) {
		long double e = y[i] - (my + sxy / sxx * (x[i] - x[0] - mx));

		ssr += e * e;
		if (i > 0)
			lag += e * prev;
		prev = e;
	}
	/*
	 * Residuals within rounding of the values (a series that lies on a
	 * line, as integers at exact times do) are no noise: a perfect line.
	 */
	if (ssr <= syy * 1e-24L)
		ssr = lag = 0;
	out->ssr = (double)ssr;
	/* A flat series is fitted exactly by a flat line. */
	out->r2 = syy > 0 ? (double)(sxy * sxy / (sxx * syy)) : 1.0;
	out->r1 = ssr > 0 ? (double)(lag / ssr) : 0;
	out->n_eff = out->r1 > 0 ? n * (1 - out->r1) / (1 + out->r1) : n;
	out->df = out->n_eff - 2;
	if (syy == 0) {
		/* Flat: no slope either way. */
		out->t = 0;
		out->t_tested = 1;
		out->p_line_up = out->p_line_down = 1;
	} else if (ssr == 0) {
		/* On a line exactly: no noise for it to stand out from. */
		out->t = out->slope > 0 ? INFINITY : -INFINITY;
		out->t_tested = 1;
		out->p_line_up = out->slope > 0 ? 0 : 1;
		out->p_line_down = out->slope > 0 ? 1 : 0;
	} else if (out->df < 1) {
		/*
		 * Fewer than 3 independent samples: residuals that follow
		 * each other this closely leave no noise to test against.
		 */
		out->t = NAN;
		out->p_line_up = out->p_line_down = 1;
	} else {
		double se = sqrt((double)ssr / out->df / (double)sxx);

		out->t = out->slope / se;
		out->t_tested = 1;
		out->p_line_up = hi_t_sf(out->t, out->df);
		out->p_line_down = hi_t_sf(-out->t, out->df);
	}
	out->p_sign_up = sign_p(out->rose, out->fell);
	out->p_sign_down = sign_p(out->fell, out->rose);
	return mann_kendall(y, n, out);
}
