import { useEffect, useRef, useState } from "react";
import { Link, Route, Switch, useLocation, useParams } from "wouter";
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import {
  Alert,
  Anchor,
  Badge,
  Button,
  Card,
  Group,
  Paper,
  Progress,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Text,
  Title,
} from "@mantine/core";
import { authorisedFetch, unwrap } from "../api/client";
import { useAssetClasses } from "../api/queries";
import { readEvents } from "../api/events";
import { ErrorNotice, QueryState } from "../components/States";
import { int, when } from "../format";
import { checkCsvHeader } from "../lib/attributes";
import { csvOutline, progressPct, TERMINAL, throughput } from "../lib/jobs";
import type { Job } from "../lib/types";
import { useSession } from "../session";

const STATUS_COLOUR: Record<string, string> = {
  queued: "gray",
  running: "blue",
  succeeded: "green",
  failed: "red",
  cancelled: "orange",
};

function NewJob() {
  const { token, can } = useSession();
  const [, navigate] = useLocation();
  const queryClient = useQueryClient();
  const classes = useAssetClasses();
  const [className, setClassName] = useState<string | null>(null);
  const [file, setFile] = useState<{ name: string; text: string } | null>(null);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const cls = classes.data?.find((c) => c.name === (className ?? classes.data?.[0]?.name));
  const outline = file ? csvOutline(file.text) : undefined;
  const problems = cls && outline ? checkCsvHeader(cls.fields, outline.header) : undefined;
  const submit = useMutation({
    mutationFn: async () => {
      const res = await authorisedFetch(token, `/v1/jobs?assetClass=${encodeURIComponent(cls!.name)}`, {
        method: "POST",
        headers: { "content-type": "text/csv" },
        body: file!.text,
      });
      return ((await res.json()) as { data: Job }).data;
    },
    onSuccess: (job) => {
      void queryClient.invalidateQueries({ queryKey: ["jobs"] });
      navigate(`/jobs/${job.id}`);
    },
  });
  const read = (f: File | undefined) => {
    if (!f) return;
    submit.reset();
    void f.text().then((text) => setFile({ name: f.name, text }));
  };
  if (!can("admin", "manager", "api")) return null;
  return (
    <Card withBorder>
      <Stack>
        <Title order={3} size="h4">
          New job
        </Title>
        <Select
          label="Asset class"
          data={(classes.data ?? []).map((c) => c.name)}
          value={cls?.name ?? null}
          onChange={setClassName}
          allowDeselect={false}
        />
        <Paper
          withBorder
          p="lg"
          style={{ borderStyle: "dashed", background: dragging ? "var(--mantine-color-blue-0)" : undefined }}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            e.preventDefault();
            setDragging(false);
            read(e.dataTransfer.files[0]);
          }}
        >
          <Stack align="center" gap="xs">
            <Text size="sm">Drop a CSV here (header row = the asset class's fields), or</Text>
            <Button variant="default" onClick={() => input.current?.click()}>
              Choose a CSV file
            </Button>
            <input
              ref={input}
              type="file"
              accept=".csv,text/csv"
              aria-label="CSV file"
              hidden
              data-testid="csv-input"
              onChange={(e) => read(e.currentTarget.files?.[0])}
            />
          </Stack>
        </Paper>
        {file && outline && (
          <Stack gap="xs" data-testid="csv-check">
            <Text size="sm">
              <b>{file.name}</b>: {int(outline.rows)} rows, {outline.header.length} columns
            </Text>
            {problems && problems.missing.length > 0 && (
              <Alert color="red" title="Required columns missing">
                {problems.missing.join(", ")}
              </Alert>
            )}
            {problems && problems.unknown.length > 0 && (
              <Alert color="yellow" title="Columns the asset class does not read">
                {problems.unknown.join(", ")}
              </Alert>
            )}
            <div className="table-scroll" tabIndex={0}>
              <Table fz="xs" withTableBorder>
                <Table.Thead>
                  <Table.Tr>
                    {outline.header.map((h) => (
                      <Table.Th key={h}>{h}</Table.Th>
                    ))}
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {outline.preview.map((r, i) => (
                    <Table.Tr key={i}>
                      {r.map((c, j) => (
                        <Table.Td key={j}>{c}</Table.Td>
                      ))}
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </div>
          </Stack>
        )}
        <ErrorNotice title="Job refused" error={submit.error} />
        <Button
          onClick={() => submit.mutate()}
          disabled={!file || !cls || (problems?.missing.length ?? 0) > 0 || outline?.rows === 0}
          loading={submit.isPending}
        >
          Start the job
        </Button>
      </Stack>
    </Card>
  );
}

function JobList() {
  const { api } = useSession();
  const jobs = useInfiniteQuery({
    queryKey: ["jobs"],
    initialPageParam: "",
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET("/v1/jobs", {
          params: { query: { pageSize: 20, ...(pageParam ? { pageToken: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.nextPageToken ?? undefined,
    refetchInterval: 5000,
  });
  const all = jobs.data?.pages.flatMap((p) => p.jobs) ?? [];
  return (
    <Card withBorder>
      <Title order={3} size="h4" mb="xs">
        Past jobs
      </Title>
      <QueryState query={{ ...jobs, data: all }} empty={(d) => d.length === 0 && "No job yet."}>
        {(list) => (
          <div className="table-scroll" tabIndex={0}>
            <Table striped>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Job</Table.Th>
                  <Table.Th>Class</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th ta="right">Rows</Table.Th>
                  <Table.Th ta="right">Failed</Table.Th>
                  <Table.Th>Created</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.map((j) => (
                  <Table.Tr key={j.id}>
                    <Table.Td>
                      <Anchor component={Link} href={`/jobs/${j.id}`} ff="monospace" size="sm">
                        {j.id.slice(0, 8)}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>{j.assetClass}</Table.Td>
                    <Table.Td>
                      <Badge variant="dot" color={STATUS_COLOUR[j.status] ?? "gray"}>
                        {j.status}
                      </Badge>
                    </Table.Td>
                    <Table.Td ta="right">{int(j.totalRows)}</Table.Td>
                    <Table.Td ta="right">{int(j.failedRows)}</Table.Td>
                    <Table.Td>{when(j.createdAt)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </div>
        )}
      </QueryState>
      {jobs.hasNextPage && (
        <Button variant="subtle" onClick={() => void jobs.fetchNextPage()} loading={jobs.isFetchingNextPage}>
          Older jobs
        </Button>
      )}
    </Card>
  );
}

function JobView() {
  const { id = "" } = useParams<{ id: string }>();
  const { api, token, can } = useSession();
  const queryClient = useQueryClient();
  const initial = useQuery({
    queryKey: ["job", id],
    queryFn: () => unwrap(api.GET("/v1/jobs/{id}", { params: { path: { id } } })),
  });
  const [live, setLive] = useState<Job | null>(null);
  const [rate, setRate] = useState(0);
  const [streamError, setStreamError] = useState<unknown>(null);
  const last = useRef<{ rows: number; at: number } | undefined>(undefined);
  const job = live ?? initial.data;
  const finished = job ? TERMINAL.has(job.status) : false;
  useEffect(() => {
    if (!initial.data || TERMINAL.has(initial.data.status)) return;
    const abort = new AbortController();
    readEvents(
      token,
      `/v1/jobs/${id}/events`,
      (e) => {
        if (e.event === "error") {
          setStreamError(new Error((JSON.parse(e.data) as { message: string }).message));
          return;
        }
        const j = JSON.parse(e.data) as Job;
        const now = { rows: j.doneRows + j.failedRows, at: performance.now() };
        setRate(
          throughput(last.current, now) ||
            (j.timings.runningMs ? (now.rows * 1000) / j.timings.runningMs : 0),
        );
        last.current = now;
        setLive(j);
        if (e.event === "done") void queryClient.invalidateQueries({ queryKey: ["jobs"] });
      },
      abort.signal,
    ).catch(setStreamError);
    return () => abort.abort();
  }, [id, initial.data, token, queryClient]);
  const cancel = useMutation({
    mutationFn: () => unwrap(api.DELETE("/v1/jobs/{id}", { params: { path: { id } } })),
    onSuccess: (j) => setLive(j),
  });
  const download = useMutation({
    mutationFn: async () => {
      const res = await authorisedFetch(token, `/v1/jobs/${id}/results`);
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = `${id}.csv`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
  });
  return (
    <Stack>
      <Anchor component={Link} href="/jobs" size="sm">
        ← All jobs
      </Anchor>
      <QueryState query={{ ...initial, data: job ?? undefined }}>
        {(j) => {
          const pctDone = progressPct(j);
          return (
            <Card withBorder>
              <Stack>
                <Group justify="space-between">
                  <Title order={3} size="h4">
                    Job <code>{j.id}</code>
                  </Title>
                  <Badge
                    variant="dot"
                    size="lg"
                    color={STATUS_COLOUR[j.status] ?? "gray"}
                    data-testid="job-status"
                  >
                    {j.status}
                  </Badge>
                </Group>
                <Progress.Root size="xl">
                  <Progress.Section
                    value={pctDone}
                    color={j.failedRows > 0 ? "yellow" : "blue"}
                    animated={!finished}
                    aria-label="Job progress"
                  />
                </Progress.Root>
                <Text size="sm" data-testid="job-progress" aria-live="polite">
                  {int(j.doneRows + j.failedRows)} of {int(j.totalRows)} rows ({pctDone.toFixed(0)}%)
                </Text>
                <SimpleGrid cols={{ base: 2, sm: 4 }}>
                  <Stat label="Valued" value={int(j.doneRows)} />
                  <Stat label="Failed" value={int(j.failedRows)} />
                  <Stat label="Invalid rows" value={int(j.invalidRows)} />
                  <Stat
                    label="Rows / s"
                    value={
                      finished && j.timings.runningMs
                        ? int(Math.round(((j.doneRows + j.failedRows) * 1000) / j.timings.runningMs))
                        : int(Math.round(rate))
                    }
                  />
                </SimpleGrid>
                {j.error && (
                  <Alert color="red" title="The job failed">
                    {j.error}
                  </Alert>
                )}
                {j.failedRows > 0 && (
                  <Text size="sm" c="dimmed">
                    Rows that failed carry their error in the results file.
                  </Text>
                )}
                <ErrorNotice title="Progress stream" error={streamError} />
                <ErrorNotice error={cancel.error ?? download.error} />
                <Group>
                  {!finished && can("admin", "manager", "api") && (
                    <Button
                      color="red"
                      variant="light"
                      onClick={() => cancel.mutate()}
                      loading={cancel.isPending}
                    >
                      Cancel
                    </Button>
                  )}
                  <Button onClick={() => download.mutate()} disabled={!finished} loading={download.isPending}>
                    Download results
                  </Button>
                </Group>
                <Text size="xs" c="dimmed">
                  created {when(j.createdAt)} · started {when(j.startedAt)} · finished {when(j.finishedAt)}
                </Text>
              </Stack>
            </Card>
          );
        }}
      </QueryState>
    </Stack>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text fw={600}>{value}</Text>
    </div>
  );
}

export default function JobsPage() {
  return (
    <Stack>
      <Title order={2}>Bulk jobs</Title>
      <Switch>
        <Route path="/jobs">
          <NewJob />
          <JobList />
        </Route>
        <Route path="/jobs/:id" component={JobView} />
      </Switch>
    </Stack>
  );
}
