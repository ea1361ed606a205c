package main

import (
	"math"
	"sort"
)

// estimate is the median of per-round values with a distribution-free
// confidence interval for it.
type estimate struct {
	Med, Lo, Hi float64
	Cover       float64 // the interval's coverage: at least the level asked for, when n allows
	N           int
}

// medianCI returns the median of xs and the order-statistics confidence
// interval [x(k), x(n+1-k)] for it: the narrowest such interval whose
// coverage, 1 - 2*P(Binomial(n, 1/2) <= k-1), is at least level. When n
// is too small for that, it returns [min, max] and its (lower) coverage.
func medianCI(xs []float64, level float64) estimate {
	n := len(xs)
	if n == 0 {
		return estimate{Med: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	e := estimate{N: n, Med: median(s)}
	k := 1
	for k+1 <= (n+1)/2 && coverage(n, k+1) >= level {
		k++
	}
	e.Lo, e.Hi, e.Cover = s[k-1], s[n-k], coverage(n, k)
	return e
}

// median of sorted s.
func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// coverage of [x(k), x(n+1-k)] as an interval for the median.
func coverage(n, k int) float64 {
	return 1 - 2*binomCDF(n, k-1)
}

// binomCDF is P(Binomial(n, 1/2) <= j).
func binomCDF(n, j int) float64 {
	if j < 0 {
		return 0
	}
	sum := 0.0
	for i := 0; i <= j && i <= n; i++ {
		sum += math.Exp(lchoose(n, i) - float64(n)*math.Ln2)
	}
	return sum
}

func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// medianOf is the plain median of xs (NaN when empty).
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return median(s)
}
