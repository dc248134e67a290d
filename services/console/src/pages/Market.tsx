import { lazy, Suspense, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Badge, Card, Grid, NavLink, Stack, Text, TextInput, Title } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { unwrap } from "../api/client";
import { Loading, QueryState } from "../components/States";
import { int } from "../format";
import { useSession } from "../session";

const LineChartCard = lazy(() => import("../components/LineChartCard"));

export default function MarketPage() {
  const { api } = useSession();
  const [prefix, setPrefix] = useState("");
  const [debounced] = useDebouncedValue(prefix, 250);
  const [selected, setSelected] = useState<string | null>(null);
  const series = useQuery({
    queryKey: ["series", debounced],
    queryFn: () =>
      unwrap(api.GET("/v1/market/series", { params: { query: debounced ? { prefix: debounced } : {} } })),
  });
  const id = selected ?? series.data?.[0]?.id ?? null;
  const points = useQuery({
    queryKey: ["series-points", id],
    enabled: id !== null,
    queryFn: () => unwrap(api.GET("/v1/market/series/{id}", { params: { path: { id: id! } } })),
  });
  return (
    <Stack>
      <Title order={2}>Market</Title>
      <Grid>
        <Grid.Col span={{ base: 12, md: 4 }}>
          <Card withBorder>
            <TextInput
              label="Search series"
              placeholder="id prefix, e.g. tx."
              value={prefix}
              onChange={(e) => setPrefix(e.currentTarget.value)}
            />
            <QueryState query={series} empty={(d) => d.length === 0 && "No series matches."}>
              {(list) => (
                <nav aria-label="Series" tabIndex={0} style={{ maxHeight: 480, overflowY: "auto" }}>
                  {list.map((s) => (
                    <NavLink
                      key={s.id}
                      label={s.title}
                      description={
                        <Text span size="xs" c="gray.8">
                          {s.id} · {s.firstPeriod}–{s.lastPeriod}
                        </Text>
                      }
                      active={s.id === id}
                      onClick={() => setSelected(s.id)}
                    />
                  ))}
                </nav>
              )}
            </QueryState>
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 8 }}>
          <Card withBorder>
            {id === null ? (
              <Text c="dimmed">Pick a series.</Text>
            ) : (
              <QueryState query={points}>
                {(p) => (
                  <Stack>
                    <Title order={3} size="h4">
                      {p.title}
                    </Title>
                    <Text size="sm" c="dimmed">
                      {p.id} · {p.unit} · {p.frequency} · source {p.source}
                      {p.area ? ` · ${p.area}` : ""}
                    </Text>
                    <Suspense fallback={<Loading />}>
                      <LineChartCard
                        rows={p.points.map((x) => ({ period: x.period, value: x.value, imputed: x.imputed }))}
                        x="period"
                        label={`${p.title} by ${p.frequency} period; imputed periods drawn hollow`}
                        height={320}
                        format={(v) => int(Math.round(v))}
                        lines={[{ key: "value", label: p.unit, colour: "#1864ab" }]}
                        dot={(row) => row["imputed"] === true}
                      />
                    </Suspense>
                    {p.quality.imputedPeriods.length > 0 ? (
                      <Text size="sm">
                        <Badge variant="outline" mr="xs">
                          imputed
                        </Badge>
                        {p.quality.imputedPeriods.join(", ")} (hollow points)
                      </Text>
                    ) : (
                      <Text size="sm" c="dimmed">
                        No imputed period.
                      </Text>
                    )}
                  </Stack>
                )}
              </QueryState>
            )}
          </Card>
        </Grid.Col>
      </Grid>
    </Stack>
  );
}
