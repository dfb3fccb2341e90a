"""Benchmarks of the operator against moto and the emulated Kubernetes API (`python -m bench [--quick]`)."""
