import { useState, type ReactNode } from "react";
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
import { FormCard } from "../components/FormCard";
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

/** A lookup by a few text fields: the result renders once asked, and again for each new question. */
function Lookup<K extends string>({
  title,
  fields,
  children,
}: {
  title: string;
  fields: { key: K; label: string }[];
  children: (asked: Record<K, string>) => ReactNode;
}) {
  const blank = Object.fromEntries(fields.map((f) => [f.key, ""])) as Record<K, string>;
  const [q, setQ] = useState(blank);
  const [asked, setAsked] = useState<Record<K, string> | null>(null);
  return (
    <FormCard title={title} onSubmit={() => setAsked({ ...q })}>
      <Group align="flex-end">
        {fields.map((f) => (
          <TextInput
            key={f.key}
            label={f.label}
            value={q[f.key]}
            onChange={(e) => setQ({ ...q, [f.key]: e.currentTarget.value })}
            required
          />
        ))}
        <Button type="submit">Trace</Button>
      </Group>
      {asked && children(asked)}
    </FormCard>
  );
}

function SaleLineage({ path }: { path: { assetClass: string; id: string } }) {
  const { api } = useSession();
  const lineage = useQuery({
    queryKey: ["sale-lineage", path],
    queryFn: () => unwrap(api.GET("/v1/lineage/sales/{assetClass}/{id}", { params: { path } })),
  });
  return (
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
  );
}

function ModelLineage({ path }: { path: { name: string; version: string } }) {
  const { api } = useSession();
  const lineage = useQuery({
    queryKey: ["model-lineage", path],
    queryFn: () => unwrap(api.GET("/v1/lineage/models/{name}/versions/{version}", { params: { path } })),
  });
  return (
    <QueryState query={lineage}>
      {(l) => (
        <Stack gap={4} mt="sm">
          <Text size="sm">
            {l.model} {l.version} was trained on <Code>{l.dataName}</Code> (sha256 {l.dataSha256.slice(0, 12)}
            )
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
  );
}

export default function DataPage() {
  return (
    <Stack>
      <Title order={2}>Data</Title>
      <Batches />
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <Lookup
          title="Lineage of a sale"
          fields={[
            { key: "assetClass", label: "Asset class" },
            { key: "id", label: "Sale id" },
          ]}
        >
          {(path) => <SaleLineage path={path} />}
        </Lookup>
        <Lookup
          title="Lineage of a model version"
          fields={[
            { key: "name", label: "Model" },
            { key: "version", label: "Version" },
          ]}
        >
          {(path) => <ModelLineage path={path} />}
        </Lookup>
      </SimpleGrid>
    </Stack>
  );
}
