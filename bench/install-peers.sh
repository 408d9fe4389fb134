#!/usr/bin/env bash
# Installs the peers `wpcdb bench` compares wpcdb with (see README.md,
# "Benchmarks"). Idempotent: what is already installed is left alone.
#
#   Debian packages: python3-numpy, libopenblas0-pthread, python3-hnswlib,
#                    python3-faiss (bench/peers.py, run with /usr/bin/python3),
#                    nodejs and npm (bench/peers-node/peers.js)
#   npm, pinned by bench/peers-node/package-lock.json: usearch 2.26.2,
#                    @lancedb/lancedb 0.31.0 (newer releases' lockfiles do not
#                    install here), apache-arrow 18.1.0
#
# Needs root for apt-get (run it as root or with sudo). Usage, from anywhere:
#   bench/install-peers.sh
set -euo pipefail
cd "$(dirname "$0")"

apt_packages=(python3-numpy libopenblas0-pthread python3-hnswlib python3-faiss)
# Node may come from elsewhere (e.g. nodesource's nodejs, which bundles npm):
# ask Debian for it only when there is no node or npm at all.
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-peers: apt-get install ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
else
  echo "install-peers: Debian packages already installed"
fi

# npm ci installs exactly the lockfile; skip it when node_modules already
# matches (npm ls fails on anything missing or of another version).
cd peers-node
if [ -d node_modules ] && npm ls --omit=dev >/dev/null 2>&1; then
  echo "install-peers: npm modules in bench/peers-node already installed"
else
  echo "install-peers: npm ci in bench/peers-node"
  npm ci --no-audit --no-fund
fi

# usearch's package ships prebuilt addons (its install script, which npm 11
# does not run without an allowScripts entry, only rebuilds when none fits).
# It declares node >= 22; npm warns under node 20 (EBADENGINE), and its
# CommonJS build, which peers.js uses, works there. Check that all loads.
node -e "require('usearch'); require('@lancedb/lancedb'); require('apache-arrow')"
/usr/bin/python3 -c "import numpy, hnswlib, faiss"
echo "install-peers: ok"
