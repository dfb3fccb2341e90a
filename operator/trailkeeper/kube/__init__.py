"""The Kubernetes edge: kopf handlers, operator settings, and the emulated API of the sandbox."""
