"""The pure core: desired AWS documents built from specs, merges, comparison by meaning, drift, plan.

Nothing here calls AWS or Kubernetes; every function is deterministic and unit-tested on its own.
"""
