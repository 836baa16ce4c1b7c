/* SPDX-License-Identifier: MIT */
/*
 * unit.stats: the statistics of heapinspect trend (inspector/stats.c)
 * against values that do not come from it: closed forms of the incomplete
 * beta function and of Student's t for 1 and 2 degrees of freedom,
 * critical values of t from the printed tables, the t density integrated
 * numerically here for degrees of freedom that are not whole, and
 * Kendall's S and its variance counted by hand.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "stats.h"

static int failures;

static void near(const char *what, double got, double want, double rel)
{
	double err = fabs(got - want);

	if (!(err <= rel * fabs(want) || err <= 1e-300)) {
		printf("FAIL %s: %.17g, expected %.17g (rel %.3g)\n", what, got,
		       want, want ? err / fabs(want) : err);
		failures++;
	}
}

/*
 * P(T > t) for t >= 0 as 1/2 minus Student's t density integrated by
 * Simpson's rule from 0 to t.
 */
static double t_sf_numeric(double t, double df)
{
	double c = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * log(df * M_PI);
	const int n = 200000;
	double h = t / n, s = 0;

	for (int i = 0; i <= n; i++) {
		double x = i * h;
		double f = exp(c - (df + 1) / 2 * log1p(x * x / df));

		s += f * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2);
	}
	return 0.5 - s * h / 3;
}

static void test_betainc(void)
{
	char what[96];

	for (double x = 0; x <= 1.0001; x += 0.05) {
		double xx = x > 1 ? 1 : x;

		snprintf(what, sizeof(what), "I_%.2f(1,1)", xx);
		near(what, hi_betainc(1, 1, xx), xx, 1e-12);
		snprintf(what, sizeof(what), "I_%.2f(3.5,1)", xx);
		near(what, hi_betainc(3.5, 1, xx), pow(xx, 3.5), 1e-12);
		snprintf(what, sizeof(what), "I_%.2f(1,7)", xx);
		near(what, hi_betainc(1, 7, xx), 1 - pow(1 - xx, 7), 1e-12);
	}
	for (double a = 0.5; a < 200; a *= 1.7) {
		snprintf(what, sizeof(what), "I_0.5(%g,%g)", a, a);
		near(what, hi_betainc(a, a, 0.5), 0.5, 1e-12);
	}
	if (!isnan(hi_betainc(-1, 1, 0.5)) || !isnan(hi_betainc(1, 1, 1.5))) {
		printf("FAIL I_x(a,b) out of range is not NAN\n");
		failures++;
	}
}

static void test_t(void)
{
	/* Critical values: P(T > t) = p for df (printed t tables). */
	static const struct {
		double df, t, p;
	} table[] = {
		{ 1, 12.706205, 0.025 },  { 2, 4.302653, 0.025 },
		{ 5, 2.570582, 0.025 },   { 10, 2.228139, 0.025 },
		{ 10, 1.812461, 0.05 },   { 10, 3.169273, 0.005 },
		{ 20, 3.849516, 0.0005 }, { 30, 2.042272, 0.025 },
		{ 100, 1.983972, 0.025 }, { 1e6, 1.959966, 0.025 },
	};
	char what[96];

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		snprintf(what, sizeof(what), "t_sf(%g, %g)", table[i].t,
			 table[i].df);
		near(what, hi_t_sf(table[i].t, table[i].df), table[i].p, 2e-5);
		snprintf(what, sizeof(what), "t_sf(-%g, %g)", table[i].t,
			 table[i].df);
		near(what, hi_t_sf(-table[i].t, table[i].df), 1 - table[i].p,
		     2e-6);
	}
	/* Closed forms: df 1 (Cauchy) and df 2. */
	for (double t = -50; t <= 1e6; t = t < 50 ? t + 0.37 : t * 3) {
		/* Written so that large t does not cancel. */
		double r = sqrt(t * t + 2);

		snprintf(what, sizeof(what), "t_sf(%g, 1)", t);
		near(what, hi_t_sf(t, 1), t > 0 ? atan(1 / t) / M_PI
					       : 0.5 - atan(t) / M_PI, 1e-10);
		snprintf(what, sizeof(what), "t_sf(%g, 2)", t);
		near(what, hi_t_sf(t, 2), t > 0 ? 1 / (r * (r + t))
					       : 0.5 - t / (2 * r), 1e-10);
	}
	/* Degrees of freedom that are not whole, as n_eff gives them. */
	for (double df = 1.3; df < 300; df *= 2.3) {
		for (double t = 0.1; t < 9; t *= 1.9) {
			double want = t_sf_numeric(t, df);

			/* 0.5 minus the integral keeps about 1e-13. */
			snprintf(what, sizeof(what), "t_sf(%g, %g)", t, df);
			if (fabs(hi_t_sf(t, df) - want) > 1e-7 * want + 1e-12)
				near(what, hi_t_sf(t, df), want, 0);
		}
	}
	near("t_sf(0, 7)", hi_t_sf(0, 7), 0.5, 1e-15);
	near("t_sf(inf, 7)", hi_t_sf(INFINITY, 7), 0, 0);
	/* A tail far out keeps its digits: df 10, t 1e4 is about 1e-40. */
	near("t_sf(1e4, 10)", hi_t_sf(1e4, 10),
	     exp(lgamma(5.5) - lgamma(5) - 0.5 * log(10 * M_PI)) *
		     pow(10, 5.5) / 10 * pow(1e4, -10), 1e-5);
	near("norm_sf(1.959964)", hi_norm_sf(1.959964), 0.025, 1e-6);
}

static void test_fit(void)
{
	struct hi_fit f;
	double x[8], y[8];

	/* Hand-counted Kendall S: 1 3 2 4 has 5 rising pairs, 1 falling. */
	double y1[] = { 1, 3, 2, 4 }, x1[] = { 0, 1, 2, 3 };

	if (hi_fit_series(x1, y1, 4, &f) || f.mk_s != 4) {
		printf("FAIL S of 1 3 2 4: %lld\n", (long long)f.mk_s);
		failures++;
	}
	near("var S n=4", f.mk_var, 4.0 * 3 * 13 / 18, 1e-12);
	/* OLS of 1 3 2 4 on 0..3: slope 0.8, intercept 1.3. */
	near("slope", f.slope, 0.8, 1e-12);
	near("intercept", f.intercept, 1.3, 1e-12);
	if (f.rose != 2 || f.fell != 1 || f.intervals != 3) {
		printf("FAIL rose/fell of 1 3 2 4: %lu/%lu of %lu\n", f.rose,
		       f.fell, f.intervals);
		failures++;
	}
	/* Sign test of 2 rises, 1 fall: P(X >= 2 | Bin(3, 1/2)) = 4/8. */
	near("sign p up", f.p_sign_up, 0.5, 1e-12);
	near("sign p down", f.p_sign_down, 7.0 / 8, 1e-12);
	/* Ties: 5 5 7 has S 2, variance (3*2*11 - 2*1*9) / 18. */
	double y2[] = { 5, 5, 7 }, x2[] = { 0, 1, 2 };

	if (hi_fit_series(x2, y2, 3, &f) || f.mk_s != 2) {
		printf("FAIL S of 5 5 7: %lld\n", (long long)f.mk_s);
		failures++;
	}
	near("var S with ties", f.mk_var, (66.0 - 18) / 18, 1e-12);
	near("z with ties", f.mk_z, 1 / sqrt((66.0 - 18) / 18), 1e-12);
	/* A perfect line: no noise, p 0 for a rise; flat: p 1 both ways. */
	for (int i = 0; i < 8; i++) {
		x[i] = i * 0.25;
		y[i] = 1e8 + 4096.0 * i;
	}
	if (hi_fit_series(x, y, 8, &f) || f.p_line_up != 0 ||
	    f.p_line_down != 1 || f.rose != 7 || f.mk_s != 28) {
		printf("FAIL perfect line: p %g/%g rose %lu S %lld\n",
		       f.p_line_up, f.p_line_down, f.rose, (long long)f.mk_s);
		failures++;
	}
	near("perfect slope", f.slope, 16384, 1e-12);
	near("sign p of 7 rises", f.p_sign_up, 1.0 / 128, 1e-12);
	for (int i = 0; i < 8; i++)
		y[i] = 5e7;
	if (hi_fit_series(x, y, 8, &f) || f.p_line_up != 1 ||
	    f.p_line_down != 1 || f.p_mk_up != 1 || f.r2 != 1) {
		printf("FAIL flat: p %g/%g mk %g\n", f.p_line_up,
		       f.p_line_down, f.p_mk_up);
		failures++;
	}
	/* 15 rises and 5 falls: P(X >= 15 | Bin(20, 1/2)) = 21700 / 2^20. */
	{
		double xs[21], ys[21];

		xs[0] = 0;
		ys[0] = 0;
		for (int i = 1; i <= 20; i++) {
			xs[i] = i;
			ys[i] = ys[i - 1] + (i % 4 == 0 ? -1 : 2);
		}
		if (hi_fit_series(xs, ys, 21, &f) || f.rose != 15 ||
		    f.fell != 5) {
			printf("FAIL 15 rises, 5 falls: %lu/%lu\n", f.rose,
			       f.fell);
			failures++;
		}
		near("sign p 15 of 20", f.p_sign_up, 21700.0 / 1048576, 1e-12);
	}
	/* x that does not increase, too few samples. */
	x[3] = x[2];
	if (hi_fit_series(x, y, 8, &f) != -EINVAL ||
	    hi_fit_series(x, y, 2, &f) != -EINVAL) {
		printf("FAIL equal x or n < 3 accepted\n");
		failures++;
	}
}

int main(void)
{
	test_betainc();
	test_t();
	test_fit();
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("PASS stats\n");
	return 0;
}
