import "@mantine/core/styles.css";
import "./styles.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App, preloadPage } from "./App";
import { loadCredential } from "./session";

// Signed in already (a reload, a link): fetch the page's code now, alongside the app's.
if (loadCredential()) preloadPage(location.pathname);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
