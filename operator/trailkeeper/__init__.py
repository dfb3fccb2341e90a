"""trailkeeper: AWS CloudTrail managed as Kubernetes resources."""

__version__ = "0.1.0"
