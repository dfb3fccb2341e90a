#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kubectl from the released sources pinned in go.mod, once, into a cache
# keyed by version (default ~/.cache/trailkeeper/kube-v1.37.2). Only Go modules are downloaded, through the
# Go module proxy; no prebuilt binary. Prints progress while it builds and the cache folder as its last line.
# Usage: kube-tools/build.sh [CACHE_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=v1.37.2
dest=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/trailkeeper/kube-$version}

declare -A source=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [etcd]=./cmd/etcd
)
missing=()
for program in etcd kube-apiserver kubectl; do
  [ -x "$dest/$program" ] || missing+=("$program")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "$dest"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "kube-tools: Go 1.26 or later is needed to build ${missing[*]} (https://go.dev/doc/install)," >&2
  echo "  or set KUBEBUILDER_ASSETS to a folder holding etcd, kube-apiserver and kubectl." >&2
  exit 1
fi

cd "$here"
packages=()
for program in "${missing[@]}"; do packages+=("${source[$program]}"); done
echo "kube-tools: building ${missing[*]} ($version) into $dest" >&2
echo "kube-tools: a one-time build, about 7 minutes on 2 cores (later runs reuse Go's build cache)" >&2
echo "kube-tools: downloading Go modules…" >&2
go mod download
total=$(go list -deps "${packages[@]}" | wc -l)
mkdir -p "$dest.partial"
start=$SECONDS
# The version Kubernetes' own release build stamps in (hack/lib/version.sh): `kubectl version`, the API
# server's /version and clients' skew checks read it.
major=${version#v}; major=${major%%.*}
minor=${version#v*.}; minor=${minor%%.*}
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
# `go build -v` names each package as it compiles it: count them for a progress line.
go build -v -ldflags "$ldflags" -o "$dest.partial/" "${packages[@]}" 2>&1 | {
  done_count=0
  while IFS= read -r line; do
    case "$line" in
      *" "*|"#"*) echo "$line" >&2 ;;  # compiler messages, not package names
      *) done_count=$((done_count + 1))
         if [ $((done_count % 100)) -eq 0 ]; then
           echo "kube-tools: compiled $done_count of at most $total packages ($((SECONDS - start)) s)" >&2
         fi ;;
    esac
  done
}
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "kube-tools: the build failed (exit $status)" >&2
  exit "$status"
fi
mkdir -p "$dest"
for program in "${missing[@]}"; do mv "$dest.partial/$program" "$dest/$program"; done
rmdir "$dest.partial" 2>/dev/null || true
echo "kube-tools: built ${missing[*]} in $((SECONDS - start)) s" >&2
echo "$dest"
