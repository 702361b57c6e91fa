// Package deploy holds no code: its tests check the deployment files beside it (Dockerfile,
// compose file, systemd unit) for what no tool on the CI machine can check, since CI has no
// container engine. The Helm chart is checked by helm lint, helm template and helm/kubecheck, and
// the configurations these files ship by cmd/smppgw's tests, which load them.
package deploy
