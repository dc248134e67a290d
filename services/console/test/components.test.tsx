// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { MantineProvider } from "@mantine/core";
import type { ReactNode } from "react";
import { ApiError } from "../src/api/client";
import { ErrorNotice, QueryState } from "../src/components/States";
import { ValueScale } from "../src/components/ValueScale";
import { loadCredential, saveCredential } from "../src/session";

const wrap = (n: ReactNode) => render(<MantineProvider>{n}</MantineProvider>);
afterEach(cleanup);

describe("console components", () => {
  it("shows an API error with its code, message, each field at fault and the request id", () => {
    wrap(
      <ErrorNotice
        title="Not valued"
        error={
          new ApiError(
            400,
            "INVALID_ARGUMENT",
            "invalid attributes",
            [{ field: "attributes.gr_liv_area", description: "must be ≥ 0" }],
            "req-9",
          )
        }
      />,
    );
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("Not valued: INVALID_ARGUMENT");
    expect(alert.textContent).toContain("invalid attributes");
    expect(alert.textContent).toContain("attributes.gr_liv_area: must be ≥ 0");
    expect(alert.textContent).toContain("request req-9");
  });

  it("gives loading, error, empty and content states", () => {
    const q = (data: string[] | undefined, error: unknown = null, isLoading = false) => ({
      data,
      error,
      isLoading,
    });
    const view = (query: ReturnType<typeof q>) =>
      wrap(
        <QueryState query={query} empty={(d) => d.length === 0 && "Nothing yet."}>
          {(d) => <p>{d.join(",")}</p>}
        </QueryState>,
      );
    view(q(undefined, null, true));
    expect(screen.getByRole("status").textContent).toContain("Loading");
    cleanup();
    view(q(undefined, new ApiError(503, "UNAVAILABLE", "down")));
    expect(screen.getByRole("alert").textContent).toContain("UNAVAILABLE");
    cleanup();
    view(q([]));
    expect(screen.getByText("Nothing yet.")).toBeTruthy();
    cleanup();
    view(q(["a", "b"]));
    expect(screen.getByText("a,b")).toBeTruthy();
  });

  it("draws the value inside its interval and says it in words for screen readers", () => {
    wrap(<ValueScale value={200_000} low={180_000} high={230_000} coverage={0.8} currency="USD" />);
    const img = screen.getByRole("img");
    expect(img.getAttribute("aria-label")).toBe("80% interval $180,000 to $230,000, value $200,000");
    const [band, marker] = [...img.querySelectorAll("rect")];
    const x = (el: Element, a: string) => Number(el.getAttribute(a));
    expect(x(marker!, "x")).toBeGreaterThan(x(band!, "x"));
    expect(x(marker!, "x")).toBeLessThan(x(band!, "x") + x(band!, "width"));
  });

  it("keeps the credential in session storage only and forgets an expired one", () => {
    saveCredential({ token: "vk_x", kind: "apiKey" });
    expect(loadCredential()).toEqual({ token: "vk_x", kind: "apiKey" });
    expect(localStorage.length).toBe(0);
    saveCredential({ token: "t", kind: "oidc", expiresAt: Date.now() - 1 });
    expect(loadCredential()).toBeNull();
    saveCredential(null);
    expect(sessionStorage.length).toBe(0);
  });
});
