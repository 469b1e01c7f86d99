#!/usr/bin/env bash
# Build the image, serve a model repository from it, and wait for its HEALTHCHECK to
# say healthy: the image check the test suite cannot make on machines without a
# Docker daemon. Needs a running daemon and network for the build (--network host:
# the build reaches what this machine reaches); the container itself runs without
# network, so the health check probes only its own loopback.
#
#   tests/deploy/image_smoke.sh MODELS_DIR        # MODELS_DIR/<name>/<version>/
#
# Optional: PYTHON_IMAGE and TORCH_INDEX_URL (the Dockerfile's build arguments, e.g.
# a mirror), TAG (default recops:smoke); DOCKER_BUILDKIT=0 where buildx is missing.
set -euo pipefail
models=$(realpath "${1:?usage: image_smoke.sh MODELS_DIR}")
tag=${TAG:-recops:smoke}
cd "$(dirname "$0")/../.."

args=()
[[ -n ${PYTHON_IMAGE:-} ]] && args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
[[ -n ${TORCH_INDEX_URL:-} ]] && args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
docker build --network host "${args[@]}" -t "$tag" .

user=$(docker run --rm --network none --entrypoint id "$tag" -u)
[[ $user != 0 ]] || { echo "FAIL: the image runs as root" >&2; exit 1; }
# What a Kubeflow / Vertex AI step does: replace the command, keep the image.
docker run --rm --network none --entrypoint recops "$tag" pipeline step --help >/dev/null

container=$(docker run -d --network none -v "$models:/srv/models:ro" "$tag")
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
status=starting
# HEALTHCHECK: a probe every 15 s, up to a 120 s start period.
for _ in $(seq 1 90); do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$container")
    [[ $status == starting ]] || break
    sleep 2
done
if [[ $status != healthy ]]; then
    echo "FAIL: health $status" >&2
    docker logs --tail 50 "$container" >&2
    exit 1
fi
# Healthy is alive; ready means the model loaded (the files must be readable by the
# image's user: `chmod -R a+rX MODELS_DIR`).
ready=no
for _ in $(seq 1 60); do
    if docker exec "$container" python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=4)" 2>/dev/null; then
        ready=yes
        break
    fi
    sleep 1
done
if [[ $ready != yes ]]; then
    echo "FAIL: healthy but not ready" >&2
    docker logs --tail 50 "$container" >&2
    exit 1
fi
docker stop --time 20 "$container" >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' "$container")
# SIGTERM: drain, close, then uvicorn re-raises the signal (128 + 15).
[[ $code == 0 || $code == 143 ]] || { echo "FAIL: exit code $code after docker stop" >&2; exit 1; }
echo "ok: $tag runs as uid $user, healthy and ready, stopped with exit code $code"
