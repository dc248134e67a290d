import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import {
  Accordion,
  Badge,
  Button,
  Card,
  Code,
  Group,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { unwrap } from "../api/client";
import { QueryState } from "../components/States";
import { int, when } from "../format";
import type { Batch } from "../lib/types";
import { useSession } from "../session";

const STATUS_COLOUR = { landed: "green", quarantined: "red", duplicate: "gray" } as const;

function BatchReport({ b }: { b: Batch }) {
  return (
    <Stack gap="xs">
      <Text size="sm">
        {int(b.records)} records · {int(b.landed)} landed · {int(b.unchanged)} unchanged · {int(b.flagged)}{" "}
        flagged · {int(b.dropped)} dropped · {int(b.outcomes)} outcomes · sha256{" "}
        <Code>{b.contentSha256.slice(0, 12)}</Code>
      </Text>
      {b.violations.length > 0 && (
        <div className="table-scroll" tabIndex={0}>
          <Table fz="sm" withTableBorder>
            <Table.Caption>Refused records ({int(b.violationCount)})</Table.Caption>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Record</Table.Th>
                <Table.Th>Field</Table.Th>
                <Table.Th>Reason</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {b.violations.map((v, i) => (
                <Table.Tr key={i}>
                  <Table.Td>{v.record}</Table.Td>
                  <Table.Td>
                    <Code>{v.field}</Code>
                  </Table.Td>
                  <Table.Td>{v.description}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </div>
      )}
      {b.flags.length > 0 && (
        <div className="table-scroll" tabIndex={0}>
          <Table fz="sm" withTableBorder>
            <Table.Caption>Landed outside the training domain</Table.Caption>
            <Table.Tbody>
              {b.flags.map((f, i) => (
                <Table.Tr key={i}>
                  <Table.Td>{f.record}</Table.Td>
                  <Table.Td>
                    <Code>{f.field}</Code>
                  </Table.Td>
                  <Table.Td>{f.code}</Table.Td>
                  <Table.Td>{f.message}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </div>
      )}
    </Stack>
  );
}

function Batches() {
  const { api } = useSession();
  const [status, setStatus] = useState<"landed" | "quarantined" | "duplicate" | null>(null);
  const batches = useQuery({
    queryKey: ["batches", status],
    queryFn: () =>
      unwrap(
        api.GET("/v1/ingest/batches", { params: { query: { limit: 50, ...(status ? { status } : {}) } } }),
      ),
    refetchInterval: 10_000,
  });
  return (
    <Card withBorder>
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h4">
          Ingest batches
        </Title>
        <Select
          aria-label="Status"
          placeholder="any status"
          data={["landed", "quarantined", "duplicate"]}
          value={status}
          onChange={(v) => setStatus(v)}
          clearable
          w={180}
        />
      </Group>
      <QueryState query={batches} empty={(d) => d.length === 0 && "No batch received yet."}>
        {(list) => (
          <Accordion multiple>
            {list.map((b) => (
              <Accordion.Item key={b.id} value={b.id}>
                <Accordion.Control>
                  <Group gap="xs" wrap="wrap">
                    <Badge variant="dot" color={STATUS_COLOUR[b.status]}>
                      {b.status}
                    </Badge>
                    <Text size="sm">
                      {b.assetClass} {b.kind} from {b.source} · {int(b.records)} records ·{" "}
                      {when(b.receivedAt)}
                    </Text>
                  </Group>
                </Accordion.Control>
                <Accordion.Panel>
                  <BatchReport b={b} />
                </Accordion.Panel>
              </Accordion.Item>
            ))}
          </Accordion>
        )}
      </QueryState>
    </Card>
  );
}

function SaleLineage() {
  const { api } = useSession();
  const [q, setQ] = useState({ assetClass: "", id: "" });
  const [asked, setAsked] = useState<typeof q | null>(null);
  const lineage = useQuery({
    queryKey: ["sale-lineage", asked],
    enabled: asked !== null,
    queryFn: () => unwrap(api.GET("/v1/lineage/sales/{assetClass}/{id}", { params: { path: asked! } })),
  });
  return (
    <Card
      withBorder
      component="form"
      onSubmit={(e) => {
        e.preventDefault();
        setAsked({ ...q });
      }}
    >
      <Title order={3} size="h4" mb="xs">
        Lineage of a sale
      </Title>
      <Group align="flex-end">
        <TextInput
          label="Asset class"
          value={q.assetClass}
          onChange={(e) => setQ({ ...q, assetClass: e.currentTarget.value })}
          required
        />
        <TextInput
          label="Sale id"
          value={q.id}
          onChange={(e) => setQ({ ...q, id: e.currentTarget.value })}
          required
        />
        <Button type="submit">Trace</Button>
      </Group>
      {asked && (
        <QueryState query={lineage}>
          {(l) => (
            <Stack gap={4} mt="sm">
              <Text size="sm">
                Sale <Code>{l.saleId}</Code> came from <b>{l.origin}</b>
                {l.batch ? ` in batch ${l.batch.id} (${l.batch.source}, ${when(l.batch.receivedAt)})` : ""}
                {l.recordSha256 ? `; record sha256 ${l.recordSha256.slice(0, 12)}` : ""}
              </Text>
              {l.raw && <Code block>{JSON.stringify(l.raw, null, 2)}</Code>}
            </Stack>
          )}
        </QueryState>
      )}
    </Card>
  );
}

function ModelLineage() {
  const { api } = useSession();
  const [q, setQ] = useState({ name: "", version: "" });
  const [asked, setAsked] = useState<typeof q | null>(null);
  const lineage = useQuery({
    queryKey: ["model-lineage", asked],
    enabled: asked !== null,
    queryFn: () =>
      unwrap(api.GET("/v1/lineage/models/{name}/versions/{version}", { params: { path: asked! } })),
  });
  return (
    <Card
      withBorder
      component="form"
      onSubmit={(e) => {
        e.preventDefault();
        setAsked({ ...q });
      }}
    >
      <Title order={3} size="h4" mb="xs">
        Lineage of a model version
      </Title>
      <Group align="flex-end">
        <TextInput
          label="Model"
          value={q.name}
          onChange={(e) => setQ({ ...q, name: e.currentTarget.value })}
          required
        />
        <TextInput
          label="Version"
          value={q.version}
          onChange={(e) => setQ({ ...q, version: e.currentTarget.value })}
          required
        />
        <Button type="submit">Trace</Button>
      </Group>
      {asked && (
        <QueryState query={lineage}>
          {(l) => (
            <Stack gap={4} mt="sm">
              <Text size="sm">
                {l.model} {l.version} was trained on <Code>{l.dataName}</Code> (sha256{" "}
                {l.dataSha256.slice(0, 12)})
                {l.snapshot
                  ? `: snapshot ${l.snapshot.id} of ${int(l.snapshot.sales)} sales from ${l.snapshot.source}`
                  : ""}
              </Text>
              {l.batches.map((b) => (
                <Text size="sm" key={b.id}>
                  batch {b.id} · {b.source} · {int(b.landed)} landed · {when(b.receivedAt)}
                </Text>
              ))}
            </Stack>
          )}
        </QueryState>
      )}
    </Card>
  );
}

export default function DataPage() {
  return (
    <Stack>
      <Title order={2}>Data</Title>
      <Batches />
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <SaleLineage />
        <ModelLineage />
      </SimpleGrid>
    </Stack>
  );
}
