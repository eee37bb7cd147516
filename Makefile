# kube-secrets-manager. Run `make help` for the targets.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

GO ?= go
ROOT := $(CURDIR)
LOCALBIN := $(ROOT)/bin

# Pinned tool and control-plane versions.
CONTROLLER_TOOLS_VERSION := v0.23.0
KUBERNETES_VERSION := v1.37.2
ETCD_VERSION := v3.7.3

CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
ENVTEST_ASSETS := $(LOCALBIN)/k8s/$(KUBERNETES_VERSION)
export KUBERNETES_VERSION ETCD_VERSION

.PHONY: help
help: ## Show the targets.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN)/tmp-cg $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/tmp-cg/controller-gen $(CONTROLLER_GEN) && rm -rf $(LOCALBIN)/tmp-cg

$(ENVTEST_ASSETS)/kube-apiserver $(ENVTEST_ASSETS)/etcd:
	hack/build-control-plane.sh

.PHONY: control-plane
control-plane: $(ENVTEST_ASSETS)/kube-apiserver $(ENVTEST_ASSETS)/etcd ## Build kube-apiserver and etcd from source (cached in bin/k8s).

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC into config/ and the chart.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=kube-secrets-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: verify
verify: generate manifests ## Fail when generated files are stale or code is not gofmt-clean.
	@if [ -n "$$(gofmt -l $$(git ls-files '*.go'))" ]; then echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; fi
	@if [ -n "$$(git status --porcelain -- api config controllers)" ]; then \
		echo "generated files are stale; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config controllers; git --no-pager diff --stat -- api config controllers; exit 1; fi
	@echo "generated files are up to date"

.PHONY: databases
databases: ## Start (or install) the PostgreSQL and MariaDB servers the rotation tests use.
	hack/ensure-databases.sh

.PHONY: test
test: control-plane databases generate manifests vet ## Unit and envtest integration tests (builds what it needs).
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test ./... -count=1 $(TEST_FLAGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 20s).
	$(GO) test ./internal/envelope -run '^$$' -fuzz FuzzOpen -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/keyring -run '^$$' -fuzz FuzzDecodeWrappedKey -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/stages -run '^$$' -fuzz FuzzTransitions -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/keyring -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./internal/value -run '^$$' -fuzz FuzzRender -fuzztime $${FUZZTIME:-20s}

.PHONY: build
build: ## Build the manager binary into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(LOCALBIN)/kube-secrets-manager .

.PHONY: kubectl
kubectl: ## Build kubectl at the pinned Kubernetes version into bin/k8s.
	hack/build-control-plane.sh --kubectl >/dev/null

INSTALL_DIR ?= $(shell $(GO) env GOPATH)/bin

.PHONY: install-plugin
install-plugin: build ## Install the kubectl plugin as $(INSTALL_DIR)/kubectl-secrets_manager.
	mkdir -p $(INSTALL_DIR)
	install -m 0755 $(LOCALBIN)/kube-secrets-manager $(INSTALL_DIR)/kubectl-secrets_manager
	@echo "installed; make sure $(INSTALL_DIR) is on PATH, then run: kubectl secrets-manager --help"

.PHONY: dev
dev: control-plane kubectl manifests build ## Run the operator on a local control plane (etcd + kube-apiserver, no root).
	$(GO) build -o $(LOCALBIN)/ksm-dev ./hack/dev
	@echo "kubectl $(KUBERNETES_VERSION) is in $(ENVTEST_ASSETS); add it to PATH with: export PATH=$(ENVTEST_ASSETS):\$$PATH"
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(LOCALBIN)/ksm-dev --manager $(LOCALBIN)/kube-secrets-manager $(DEV_FLAGS)
