# One image for every Valora component: `valora serve <service>` picks the part a pod runs.
# Multi-stage: build with dev dependencies, ship only production dependencies, compiled code,
# the default models and the market seed; run as an unprivileged user on a read-only filesystem.
FROM node:20-bookworm-slim AS build
WORKDIR /src
ENV ONNXRUNTIME_NODE_INSTALL=skip
# A C compiler for the TreeSHAP kernel (services/kit/native); only this stage has it.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev --no-audit --no-fund \
 && test -f services/kit/native/build/Release/valora_tree_shap.node \
 && rm -rf services/kit/native/build/Release/obj.target services/kit/native/build/Release/.deps \
 && find . -name '*.tsbuildinfo' -delete \
 && rm -rf services/*/src services/*/test services/*/bench operator/src operator/test proto/src/gen/*.ts bench e2e charts .ci

FROM node:20-bookworm-slim
LABEL org.opencontainers.image.title="valora" \
      org.opencontainers.image.description="Valora: serve asset valuation models on Kubernetes" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=build --chown=0:0 /src /app
# The default ValuationModels (models/*/<class>.yaml) load file:///opt/valora/models/<class>/model.onnx:
# the model-fetch init container copies it into the model server's volume.
RUN mkdir -p /opt/valora && ln -s /app/models /opt/valora/models
USER 10001:10001
ENTRYPOINT ["node", "/app/services/cli/dist/bin.js"]
CMD ["--help"]
