#!/bin/sh
# A stand-in for the python:3.11-slim-bookworm base image, made from Debian's
# own packages, for machines that reach Debian's archive and PyPI but no
# container registry (the machine deploy/README.md's container run was made on).
#
#   sudo deploy/base-image.sh [TAG] [CA_BUNDLE]
#   podman build --format docker -f deploy/Dockerfile \
#     --build-arg PYTHON_IMAGE=localhost/debian-python:3.11-bookworm \
#     --build-arg WITH_SOFTHSM=1 -t localhost/shared-gov:softhsm .
#
# TAG defaults to localhost/debian-python:3.11-bookworm. CA_BUNDLE: a PEM
# bundle to use as the image's /etc/ssl/certs/ca-certificates.crt, when the
# build's HTTPS traffic (pip) goes through a TLS-inspecting proxy whose CA is
# only in the host's bundle; leave it out otherwise.
#
# Debian's python3.11 (3.11.2) in /usr/bin, `python` from python-is-python3,
# venv/ensurepip from python3.11-venv. Needs root, debootstrap and podman
# (or docker: `docker import` takes the same arguments).
set -eu
tag=${1:-localhost/debian-python:3.11-bookworm}
ca_bundle=${2:-}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
engine=${CONTAINER_ENGINE:-podman}

rootfs=$(mktemp -d /tmp/sg-base-XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase \
  --include=python3.11,python3.11-venv,python3-venv,python-is-python3,ca-certificates \
  bookworm "$rootfs" "$mirror"
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/*
if [ -n "$ca_bundle" ]; then
  cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi
tar -C "$rootfs" -c . | "$engine" import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$tag"
echo "$tag"
