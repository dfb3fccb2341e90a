"""Observe → diff → act for Trail and LogRetention, free of Kubernetes: kopf and the CLI both call it."""
