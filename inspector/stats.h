/* SPDX-License-Identifier: MIT */
/*
 * The statistics trend decides on: over one figure sampled at increasing
 * times, does it move in one direction, and along a line?  Two tests, each
 * against the noise the series itself shows:
 *
 * - a straight line fitted by least squares, its slope tested with
 *   Student's t, the degrees of freedom taken from the effective number
 *   of samples n (1 - r1) / (1 + r1), r1 the lag-1 autocorrelation of the
 *   residuals (the correction of Santer et al. 2000, J. Geophys. Res.
 *   105(D6), for serially correlated noise: a heap's figures are not
 *   independent from one sample to the next, and a step or a random walk
 *   leaves residuals that follow each other);
 * - Mann-Kendall's test of a monotonic trend (Kendall's S over every pair
 *   of samples, its variance corrected for ties, the normal approximation
 *   with a continuity correction), which an outlier or the shape of the
 *   growth does not move;
 * - the sign test of the intervals from one sample to the next (how many
 *   rose against how many fell, exact binomial): growth spread over the
 *   series, as a curve that speeds up or slows down has it, and a step
 *   has not.
 *
 * Pure functions over arrays; nothing here prints.
 */
#ifndef HEAPINSPECT_STATS_H
#define HEAPINSPECT_STATS_H

#include <stddef.h>
#include <stdint.h>

/*
 * The regularized incomplete beta function I_x(a, b), for a, b > 0 and
 * 0 <= x <= 1 (its continued fraction, DLMF 8.17.22, evaluated by the
 * modified Lentz method); NAN for arguments out of range.
 */
double hi_betainc(double a, double b, double x);

/* P(T > t) for Student's t with df > 0 degrees of freedom (real df). */
double hi_t_sf(double t, double df);

/* P(Z > z) for the standard normal distribution. */
double hi_norm_sf(double z);

/* What the tests say about one series. */
struct hi_fit {
	size_t n;
	double slope;           /* least squares, y units per x unit */
	double intercept;       /* at x = the first x */
	double r2;              /* 1 for a flat series */
	double ssr;             /* sum of squared residuals */
	double r1;              /* lag-1 autocorrelation of the residuals */
	double n_eff;           /* n (1 - r1) / (1 + r1) when r1 > 0, else n */
	double df;              /* n_eff - 2 */
	double t;               /* slope / its standard error; +-INFINITY
				   for a perfect line, 0 for a flat one */
	int t_tested;           /* df >= 1: there was noise to test against */
	double p_line_up;       /* P(a slope this large | no trend) */
	double p_line_down;
	int64_t mk_s;           /* Kendall's S: rising pairs - falling pairs */
	double mk_var;          /* its variance, ties corrected */
	double mk_z;
	double p_mk_up;         /* one-sided, normal approximation */
	double p_mk_down;
	unsigned long rose, fell, intervals; /* from one sample to the next */
	double p_sign_up;       /* sign test: P(rose or more of rose + fell
				   intervals rising | each 1/2) */
	double p_sign_down;
};

/*
 * Fit y over x (n values each, x strictly increasing, n >= 3).  Return 0,
 * -EINVAL when x does not increase or n < 3, -ENOMEM.
 */
int hi_fit_series(const double *x, const double *y, size_t n,
		  struct hi_fit *out);

#endif
