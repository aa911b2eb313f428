// Package deploy holds what an operator deploys a relay with, and the
// tests that keep it working: Dockerfile (a multi-stage, distroless,
// non-root image with a HEALTHCHECK on /healthz), pursuance-relay.service
// (a hardened systemd unit) and relay.yaml (its settings). The tests check
// the Dockerfile's essentials where no image builder runs (.ci/run builds
// the image where one does), run its command and health check against the
// real relay command, and check the unit with systemd-analyze where it is
// installed (docs/operating.md).
package deploy
