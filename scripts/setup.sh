#!/usr/bin/env bash
# Installs the system packages tollgate needs on Debian/Ubuntu, only those missing.
#   scripts/setup.sh           build and run: cmake (zlib-ng in pingora-core), a C compiler, CA roots
#   scripts/setup.sh --test    also Python's venv, redis-server, redis-cli, openssl and promtool for the end-to-end suite
#   scripts/setup.sh --bench   also nginx (the baseline) and wrk (the load generator)
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || need+=(make)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
for arg in "$@"; do
  case "$arg" in
    --test)
      command -v python3 >/dev/null 2>&1 || need+=(python3)
      python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
      command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
      # The Sentinel and Cluster tests build their cluster with redis-cli.
      command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
      # The Vertex AI and secrets tests make throwaway service-account keys.
      command -v openssl >/dev/null 2>&1 || need+=(openssl)
      # promtool lints /metrics and deploy/prometheus.yml.
      command -v promtool >/dev/null 2>&1 || need+=(prometheus)
      ;;
    --bench)
      command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
      command -v wrk >/dev/null 2>&1 || need+=(wrk)
      ;;
  esac
done

if ((${#need[@]})); then
  echo "setup: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
