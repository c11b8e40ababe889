"""Analysis: the Pareto front of accuracy against size."""
