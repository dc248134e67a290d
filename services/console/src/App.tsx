import { lazy, Suspense, useEffect } from "react";
import { BrowserRouter, Navigate, NavLink, Route, Routes, useLocation } from "react-router";
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

const ValuePage = lazy(() => import("./pages/Value"));
const JobsPage = lazy(() => import("./pages/Jobs"));
const ModelsPage = lazy(() => import("./pages/Models"));
const DataPage = lazy(() => import("./pages/Data"));
const MarketPage = lazy(() => import("./pages/Market"));
const AccountPage = lazy(() => import("./pages/Account"));

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
  const location = useLocation();
  useEffect(close, [location.pathname, close]);
  const pages = pagesFor(tenant?.principal.roles ?? []);
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
          <MNavLink key={p.path} component={NavLink} to={p.path} label={p.label} />
        ))}
        <MNavLink component="a" href="/docs" label="API reference" />
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route path="/" element={<Navigate to={pages[0]?.path ?? "/models"} replace />} />
            <Route path="/value" element={<ValuePage />} />
            <Route path="/jobs/*" element={<JobsPage />} />
            <Route path="/models" element={<ModelsPage />} />
            <Route path="/data/*" element={<DataPage />} />
            <Route path="/market" element={<MarketPage />} />
            <Route path="/account/*" element={<AccountPage />} />
            <Route
              path="*"
              element={<ErrorNotice title="Not found" error={new Error(`no page ${location.pathname}`)} />}
            />
          </Routes>
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}

function Gate() {
  const { credential, tenant, tenantLoading } = useSession();
  const location = useLocation();
  if (location.pathname === CALLBACK_PATH) return <OidcCallback />;
  if (!credential) return <SignIn />;
  if (tenantLoading) return <Loading label="Signing in" />;
  if (!tenant) return <Loading label="Signing in" />;
  return <Shell />;
}

export function App({ queryClient = createQueryClient() }: { queryClient?: QueryClient }) {
  return (
    <MantineProvider theme={theme}>
      <QueryClientProvider client={queryClient}>
        <BrowserRouter>
          <SessionProvider>
            <Gate />
          </SessionProvider>
        </BrowserRouter>
      </QueryClientProvider>
    </MantineProvider>
  );
}
