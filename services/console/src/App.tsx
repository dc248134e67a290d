import { lazy, Suspense, useEffect, useState } from "react";
import { Link, Redirect, Route, Switch, useLocation } from "wouter";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import {
  AppShell,
  Badge,
  Burger,
  Button,
  Group,
  MantineProvider,
  NavLink as MNavLink,
  Text,
  Title,
} from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { ApiError } from "./api/client";
import { ErrorNotice, Loading } from "./components/States";
import { pagesFor } from "./nav";
import { SessionProvider, useSession } from "./session";
import { SignIn, OidcCallback } from "./pages/SignIn";
import { CALLBACK_PATH } from "./oidc";
import { theme } from "./theme";

/** Each page's chunk, by its first path segment; fetched at start-up for the page opened (see main.tsx). */
export const PAGE_CHUNKS = {
  value: () => import("./pages/Value"),
  jobs: () => import("./pages/Jobs"),
  models: () => import("./pages/Models"),
  data: () => import("./pages/Data"),
  market: () => import("./pages/Market"),
  account: () => import("./pages/Account"),
};
const ValuePage = lazy(PAGE_CHUNKS.value);
const JobsPage = lazy(PAGE_CHUNKS.jobs);
const ModelsPage = lazy(PAGE_CHUNKS.models);
const DataPage = lazy(PAGE_CHUNKS.data);
const MarketPage = lazy(PAGE_CHUNKS.market);
const AccountPage = lazy(PAGE_CHUNKS.account);

/** Starts fetching the chunk of the page at `path` (so it loads while the principal is resolved). */
export function preloadPage(path: string): void {
  const first = path.split("/")[1] as keyof typeof PAGE_CHUNKS;
  void PAGE_CHUNKS[first]?.().catch(() => undefined);
}

/** Retries what may pass (outages, timeouts), never what will not (4xx). */
export function shouldRetry(failures: number, error: unknown): boolean {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failures < 3;
}

export function createQueryClient() {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: shouldRetry, staleTime: 10_000, refetchOnWindowFocus: true },
      mutations: { retry: false },
    },
  });
}

function Shell() {
  const { tenant, signOut } = useSession();
  const [opened, { toggle, close }] = useDisclosure();
  const [location] = useLocation();
  useEffect(close, [location, close]);
  const pages = pagesFor(tenant?.principal.roles ?? []);
  // Until the principal is known the page renders (its data loads in parallel); the menu waits.
  const landing = tenant ? (pages[0]?.path ?? "/models") : undefined;
  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 220, breakpoint: "sm", collapsed: { mobile: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Open the menu" />
            <Title order={1} size="h4">
              Valora
            </Title>
          </Group>
          <Group gap="xs" wrap="nowrap">
            <Text size="sm" visibleFrom="xs" truncate maw={220}>
              {tenant?.name}
            </Text>
            {tenant?.principal.roles.map((r) => (
              <Badge key={r} variant="light" visibleFrom="xs">
                {r}
              </Badge>
            ))}
            <Button variant="subtle" size="compact-sm" onClick={signOut}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" component="nav" aria-label="Pages">
        {pages.map((p) => (
          <MNavLink
            key={p.path}
            component={Link}
            href={p.path}
            label={p.label}
            active={location === p.path || location.startsWith(`${p.path}/`)}
            aria-current={location === p.path || location.startsWith(`${p.path}/`) ? "page" : undefined}
          />
        ))}
        <MNavLink component="a" href="/docs" label="API reference" />
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Loading />}>
          <Switch>
            <Route path="/">{landing ? <Redirect to={landing} replace /> : <Loading />}</Route>
            <Route path="/value" component={ValuePage} />
            <Route path="/jobs" component={JobsPage} />
            <Route path="/jobs/:id" component={JobsPage} />
            <Route path="/models" component={ModelsPage} />
            <Route path="/data" component={DataPage} />
            <Route path="/market" component={MarketPage} />
            <Route path="/account" component={AccountPage} />
            <Route path="/account/:tab" component={AccountPage} />
            <Route>
              <ErrorNotice title="Not found" error={new Error(`no page ${location}`)} />
            </Route>
          </Switch>
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}

function Gate() {
  const { credential, tenant, tenantLoading } = useSession();
  const [location] = useLocation();
  if (location === CALLBACK_PATH) return <OidcCallback />;
  if (!credential) return <SignIn />;
  // A credential from this tab's storage: show the page while it is checked (a refusal returns here).
  if (!tenant && !tenantLoading) return <Loading label="Signing in" />;
  return <Shell />;
}

export function App({ queryClient }: { queryClient?: QueryClient }) {
  // One cache for the app's life: a default argument would make a new one at every render.
  const [client] = useState(() => queryClient ?? createQueryClient());
  return (
    <MantineProvider theme={theme}>
      <QueryClientProvider client={client}>
        <SessionProvider>
          <Gate />
        </SessionProvider>
      </QueryClientProvider>
    </MantineProvider>
  );
}
