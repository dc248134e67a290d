# Developer entry points. npm scripts do the work; this file gives them memorable names.
.PHONY: proto build test lint models dev images kind-up kind-down e2e chart clean

proto:          ## regenerate protobuf code (proto/src/gen) after buf lint
	npm run proto

build:          ## compile every workspace (tsc -b)
	npm run build

test:           ## build, lint and run the test suite (uses DATABASE_URL / REDIS_URL when set)
	npm test

lint:           ## type-check tests, eslint (type-aware), buf lint
	npm run lint

db:             ## start PostgreSQL and Redis on loopback for tests; prints the URLs to export
	@scripts/local-db.sh

models: build   ## rebuild the default models (models/real-estate, models/autos) byte-identically
	scripts/build-models.sh

dev:            ## run the platform locally with embedded defaults
	npm start

clean:
	npm run clean

images:         ## build the valora image (one image; `valora serve <service>` picks the part)
	docker build -t valora:dev .

chart:          ## helm lint + template of charts/valora (helm from node_modules)
	npm run chart >/dev/null && echo "charts/valora: lint and template OK"

kind-up:        ## kind cluster + image + chart + default asset classes, then how to call the API
	scripts/kind.sh up

kind-down:      ## delete the kind cluster
	scripts/kind.sh down

e2e:            ## end-to-end suites against the kind cluster (skipped with a reason without one)
	npm run e2e
