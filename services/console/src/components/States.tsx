import { Alert, Center, List, Loader, Stack, Text } from "@mantine/core";
import type { ReactNode } from "react";
import { ApiError } from "../api/client";

/** An API error as people need it: the message, the fields at fault and the request id to quote. */
export function ErrorNotice({ error, title = "Something went wrong" }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : undefined;
  return (
    <Alert color="red" title={e ? `${title}: ${e.code}` : title} role="alert" variant="light">
      <Stack gap={4}>
        <Text size="sm">{error instanceof Error ? error.message : JSON.stringify(error)}</Text>
        {e && e.details.length > 0 && (
          <List size="sm">
            {e.details.map((d) => (
              <List.Item key={d.field + d.description}>
                <Text span fw={600} ff="monospace" size="sm">
                  {d.field}
                </Text>
                : {d.description}
              </List.Item>
            ))}
          </List>
        )}
        {e?.requestId && (
          <Text size="xs" c="dimmed">
            request {e.requestId}
          </Text>
        )}
      </Stack>
    </Alert>
  );
}

export function Loading({ label = "Loading" }: { label?: string }) {
  return (
    <Center py="xl" role="status" aria-live="polite">
      <Loader size="sm" mr="sm" />
      <Text size="sm" c="dimmed">
        {label}…
      </Text>
    </Center>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <Center py="lg">
      <Text size="sm" c="dimmed">
        {children}
      </Text>
    </Center>
  );
}

/** Loading, error or empty states of a query, or its content. */
export function QueryState<T>({
  query,
  empty,
  children,
  label,
}: {
  query: { data: T | undefined; error: unknown; isLoading: boolean };
  empty?: (data: T) => string | false;
  label?: string;
  children: (data: T) => ReactNode;
}) {
  if (query.isLoading) return <Loading {...(label ? { label } : {})} />;
  if (query.error) return <ErrorNotice error={query.error} />;
  if (query.data === undefined) return null;
  const none = empty?.(query.data);
  if (none) return <Empty>{none}</Empty>;
  return <>{children(query.data)}</>;
}
