# eddy — build, lint and test.
#
#   make services       start Kafka, Redis and MariaDB on loopback (idempotent)
#   make services-down  stop what `make services` started
#   make test           services, then every test with -race
#   make lint           gofmt, go vet, staticcheck
#   make build          bin/worker
#   make mutate         the mutation check (mutations.yaml): every mutation killed
#   make faults         injected faults (mutations.yaml, fault: true) vs the chaos test
#
# State of the services lives in $(EDDY_SERVICES_DIR) (default
# /tmp/eddy-services); KAFKA_VERSION picks the broker (default 3.9.2).

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
TESTFLAGS   ?= -race -count=1 -timeout 25m
PKGS        ?= ./...

.PHONY: all services services-down services-status test lint build chaos bench mutate faults

all: lint build

services:
	@scripts/services.sh up

services-down:
	@scripts/services.sh down

services-status:
	@scripts/services.sh status

test: services
	$(GO) test $(TESTFLAGS) $(PKGS)

lint:
	@files=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$files" ]; then echo "gofmt: these files need formatting:"; echo "$$files"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags chaos ./integration/chaos/
	$(GO) run $(STATICCHECK) $(PKGS)
	$(GO) run $(STATICCHECK) -tags chaos ./integration/chaos/

build:
	$(GO) build -o bin/worker ./cmd/worker

# chaos: services, then the chaos test (integration/chaos): three workers
# SIGKILLed, frozen and replayed mid-stream, once per state backend; about
# five minutes in all.
chaos: services
	$(GO) test -tags chaos -count=1 -timeout 15m -v ./integration/chaos/

# mutate: services, then each mutation of mutations.yaml applied alone to a
# scratch copy of the tree (scripts/mutate); fails unless the tests named
# for each kill it. About 4–5 minutes on 2 cores. MUTATE=name,... runs some.
MUTATE ?=
mutate: services
	$(GO) run ./scripts/mutate -list mutations.yaml $(if $(MUTATE),-only $(MUTATE))

# faults: the injected faults of mutations.yaml (fault: true), each against
# the chaos test on Redis state; prints each verdict and the figure the
# chaos test reports (wrong windows, a zombie's commit). About 4 minutes
# per fault; not run by CI.
faults: services
	$(GO) run ./scripts/mutate -list mutations.yaml -faults $(if $(MUTATE),-only $(MUTATE))

# bench: services, then the benchmark program (bench/, see BENCHMARKS.md):
# throughput, latency and failover measured in one run, about 5 minutes on
# 2 cores; the result goes to bench/results/latest.json. BENCHFLAGS adds
# flags, e.g. BENCHFLAGS="-events 200000 -scenarios a,d".
BENCHFLAGS ?=
bench: services
	$(GO) run ./bench -out bench/results/latest.json $(BENCHFLAGS)
