"""A real Kubernetes control plane on this machine: etcd and kube-apiserver built from released sources.

The same harness serves the tests, `trailkeeper sandbox` and the bench: it finds the programs
(`tools`), makes the certificates and keys (`pki`), starts etcd and kube-apiserver on free loopback
ports with authentication and RBAC on (`control_plane`) and writes kubeconfigs (`kubeconfig`).
Nothing here imports kopf or the operator: it is plumbing for running them.
"""
