import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev -w @valora/console` serves the console with hot reload against a gateway on :8080.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    // The shell loads first; each page, the charts and the map are chunks of their own.
    chunkSizeWarningLimit: 700,
  },
  server: { proxy: { "/v1": "http://127.0.0.1:8080", "/docs": "http://127.0.0.1:8080" } },
});
