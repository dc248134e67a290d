import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Alert, Badge, Card, Group, Progress, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { unwrap } from "../api/client";
import { Loading, QueryState } from "../components/States";
import { int, pct } from "../format";
import type { Model } from "../lib/types";
import { useSession } from "../session";

const LineChartCard = lazy(() => import("../components/LineChartCard"));

/** Analyses seen while the page is open, per model: the canary's figures over time. */
type History = Record<
  string,
  { at: string; step: number; biasPct: number; medianAbsDeltaPct: number; absDeltaP90Pct: number }[]
>;

function Realised({ name }: { name: string }) {
  const { api } = useSession();
  const perf = useQuery({
    queryKey: ["model-performance", name],
    queryFn: () => unwrap(api.GET("/v1/models/{name}/performance", { params: { path: { name } } })),
    refetchInterval: 30_000,
  });
  const r = perf.data?.realised;
  if (perf.isLoading) return <Loading label="Realised accuracy" />;
  if (!r || r.periods.length === 0)
    return (
      <Text size="sm" c="dimmed">
        No realised accuracy yet: it appears once sales of valued assets land.
      </Text>
    );
  const rows = r.periods.map((p) => ({
    month: `${p.month ?? "?"} ${p.modelVersion}`,
    mdape: p.mdapePct,
    ppe10: p.ppe10Pct,
  }));
  return (
    <Stack gap="xs">
      <Group gap="xs">
        <Text size="sm" fw={600}>
          Realised accuracy by month
        </Text>
        {r.drift ? (
          <Badge variant="dot" color="red">
            drift: MdAPE above {pct(r.driftThresholdMdapePct)}
          </Badge>
        ) : (
          <Badge variant="dot" color="green">
            no drift
          </Badge>
        )}
      </Group>
      <LineChartCard
        rows={rows}
        x="month"
        label={`Realised MdAPE and PPE10 of ${name} by month`}
        format={(v) => pct(v)}
        lines={[
          { key: "mdape", label: "MdAPE %", colour: "#c92a2a" },
          { key: "ppe10", label: "PPE10 %", colour: "#2b8a3e" },
        ]}
      />
    </Stack>
  );
}

function ModelCard({ m, history }: { m: Model; history: History[string] }) {
  const a = m.candidateAnalysis;
  return (
    <Card withBorder data-testid={`model-${m.name}`}>
      <Stack>
        <Group justify="space-between">
          <Title order={3} size="h4">
            {m.name}{" "}
            <Text span c="dimmed" size="sm">
              ({m.assetClass})
            </Text>
          </Title>
          <Group gap="xs">
            <Badge color="blue">champion {m.champion.version}</Badge>
            {m.candidate && (
              <Badge variant="dot" color="grape">
                {m.candidate.strategy.toLowerCase()} {m.candidate.version}
              </Badge>
            )}
          </Group>
        </Group>
        {m.candidate ? (
          <Stack gap={4}>
            <Text size="sm" data-testid="traffic">
              Candidate traffic: {m.candidate.trafficPercent}%{a ? ` · phase ${a.phase}` : ""}
            </Text>
            <Progress.Root size="lg">
              <Progress.Section
                value={100 - m.candidate.trafficPercent}
                color="blue"
                aria-label="Champion's share of traffic"
              />
              <Progress.Section
                value={m.candidate.trafficPercent}
                color="grape"
                aria-label="Candidate's share of traffic"
              />
            </Progress.Root>
          </Stack>
        ) : (
          <Text size="sm" c="dimmed">
            No rollout in progress: the champion takes all traffic.
          </Text>
        )}
        {a && (
          <Alert
            color={a.passed ? "green" : a.pairs === 0 ? "gray" : "red"}
            title={`Analysis of ${a.version}: ${a.passed ? "passing" : a.pairs === 0 ? "gathering evidence" : "failing"}`}
          >
            {a.message && <Text size="sm">{a.message}</Text>}
            <Text size="sm">
              {int(a.pairs)} paired valuations · bias {pct(a.biasPct, 2)} · median |Δ|{" "}
              {pct(a.medianAbsDeltaPct, 2)} · p90 |Δ| {pct(a.absDeltaP90Pct, 2)}
            </Text>
          </Alert>
        )}
        {history.length > 1 && (
          <LineChartCard
            rows={history}
            x="at"
            label={`Canary analysis of ${m.name} over time`}
            format={(v) => pct(v, 2)}
            lines={[
              { key: "biasPct", label: "bias %", colour: "#e67700" },
              { key: "medianAbsDeltaPct", label: "median |Δ| %", colour: "#1864ab" },
              { key: "absDeltaP90Pct", label: "p90 |Δ| %", colour: "#862e9c" },
            ]}
          />
        )}
        <div className="table-scroll" tabIndex={0}>
          <Table fz="sm" style={{ whiteSpace: "nowrap" }}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Version</Table.Th>
                <Table.Th>Role</Table.Th>
                <Table.Th ta="right">Requests</Table.Th>
                <Table.Th ta="right">Errors</Table.Th>
                <Table.Th ta="right">Fallbacks</Table.Th>
                <Table.Th ta="right">p50</Table.Th>
                <Table.Th ta="right">p99</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {m.performance.map((p) => (
                <Table.Tr key={p.version + p.role}>
                  <Table.Td>{p.version}</Table.Td>
                  <Table.Td>{p.role}</Table.Td>
                  <Table.Td ta="right">{int(p.requests)}</Table.Td>
                  <Table.Td ta="right">{int(p.errors)}</Table.Td>
                  <Table.Td ta="right">{int(p.fallbacks)}</Table.Td>
                  <Table.Td ta="right">{p.latencyP50Ms.toFixed(1)} ms</Table.Td>
                  <Table.Td ta="right">{p.latencyP99Ms.toFixed(1)} ms</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </div>
        <Realised name={m.name} />
      </Stack>
    </Card>
  );
}

export default function ModelsPage() {
  const { api } = useSession();
  const models = useQuery({
    queryKey: ["models"],
    queryFn: () => unwrap(api.GET("/v1/models")),
    refetchInterval: 2000,
  });
  const [history, setHistory] = useState<History>({});
  const seen = useRef(new Set<string>());
  useEffect(() => {
    for (const m of models.data ?? []) {
      const a = m.candidateAnalysis;
      // An analysis without a time (none run yet) is not a point in time.
      if (!a || Number.isNaN(Date.parse(a.at)) || seen.current.has(`${m.name}@${a.at}`)) continue;
      seen.current.add(`${m.name}@${a.at}`);
      setHistory((h) => ({
        ...h,
        [m.name]: [
          ...(h[m.name] ?? []),
          {
            at: new Date(a.at).toLocaleTimeString("en-GB"),
            step: m.candidate?.trafficPercent ?? 0,
            biasPct: a.biasPct,
            medianAbsDeltaPct: a.medianAbsDeltaPct,
            absDeltaP90Pct: a.absDeltaP90Pct,
          },
        ].slice(-120),
      }));
    }
  }, [models.data]);
  return (
    <Stack>
      <Title order={2}>Models</Title>
      <Suspense fallback={<Loading />}>
        <QueryState
          query={models}
          empty={(d) => d.length === 0 && "No model serves an asset class open to this key."}
        >
          {(list) => (
            <SimpleGrid cols={{ base: 1, lg: 2 }}>
              {list.map((m) => (
                <ModelCard key={m.name} m={m} history={history[m.name] ?? []} />
              ))}
            </SimpleGrid>
          )}
        </QueryState>
      </Suspense>
    </Stack>
  );
}
