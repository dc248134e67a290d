import { lazy, Suspense, useMemo, useState } from "react";
import { useMutation } from "@tanstack/react-query";
import {
  Alert,
  Badge,
  Button,
  Card,
  Grid,
  Group,
  NumberInput,
  Select,
  SimpleGrid,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { unwrap } from "../api/client";
import { useAssetClasses, useConsoleConfig } from "../api/queries";
import { ErrorNotice, Loading, QueryState } from "../components/States";
import { ValueScale } from "../components/ValueScale";
import { int, money, pct, day } from "../format";
import { exampleValues, fieldHint, fieldLabel, formToAttributes, type FormValues } from "../lib/attributes";
import type { AssetClass, Field, Valuation } from "../lib/types";
import { useSession } from "../session";

const Waterfall = lazy(() => import("../components/Waterfall"));
const CompsMap = lazy(() => import("../components/CompsMap"));

function FieldInput({ f, value, onChange }: { f: Field; value: string; onChange: (v: string) => void }) {
  const label = fieldLabel(f.name);
  const description = fieldHint(f) || undefined;
  const placeholder = f.default !== undefined ? `default ${String(f.default)}` : undefined;
  const common = {
    label,
    description,
    required: f.required && f.default === undefined,
    placeholder,
    name: f.name,
  };
  const options = f.enum ?? f.training?.categories;
  if (f.type === "boolean")
    return (
      <Select
        {...common}
        data={[
          { value: "true", label: "yes" },
          { value: "false", label: "no" },
        ]}
        value={value || null}
        onChange={(v) => onChange(v ?? "")}
        clearable
      />
    );
  if (options && options.length > 0)
    return (
      <Select
        {...common}
        data={options}
        value={value || null}
        onChange={(v) => onChange(v ?? "")}
        searchable
        clearable
        // An open domain accepts values the model never saw (valued with a warning).
        {...(f.enum ? {} : { description: `${description ? description + " · " : ""}other values accepted` })}
      />
    );
  if (f.type === "number" || f.type === "integer")
    return (
      <NumberInput
        {...common}
        value={value}
        onChange={(v) => onChange(String(v))}
        {...(f.min !== undefined ? { min: f.min } : {})}
        {...(f.max !== undefined ? { max: f.max } : {})}
        allowDecimal={f.type === "number"}
        // Years and counts read without a separator; prices and areas with one.
        {...((f.training?.max ?? f.max ?? 0) >= 10_000 ? { thousandSeparator: "," } : {})}
        clampBehavior="none"
      />
    );
  return <TextInput {...common} value={value} onChange={(e) => onChange(e.currentTarget.value)} />;
}

function Result({
  v,
  sent,
  cls,
  tileUrl,
}: {
  v: Valuation;
  /** The attributes sent: the subject's coordinates for the map. */
  sent: Record<string, unknown>;
  cls: AssetClass;
  tileUrl: string | null;
}) {
  const geo = cls.geo;
  const coords = (a: Record<string, unknown>) => {
    const lat = geo ? Number(a[geo.latitudeField]) : NaN;
    const lng = geo ? Number(a[geo.longitudeField]) : NaN;
    return Number.isFinite(lat) && Number.isFinite(lng) ? { lat, lng } : undefined;
  };
  return (
    <Stack data-testid="valuation-result">
      <Card withBorder>
        <Group justify="space-between" align="flex-start">
          <div>
            <Text size="sm" c="dimmed">
              Value
            </Text>
            <Text size="2rem" fw={700} data-testid="value">
              {money(v.value, v.currency)}
            </Text>
            <Text size="sm">
              {Math.round(v.interval.coverage * 100)}% interval {money(v.interval.low, v.currency)} –{" "}
              {money(v.interval.high, v.currency)}
            </Text>
          </div>
          <Stack gap={4} align="flex-end">
            <Badge
              variant="dot"
              size="lg"
              color={v.confidence >= 0.7 ? "green" : v.confidence >= 0.4 ? "yellow" : "red"}
            >
              confidence {pct(v.confidence * 100, 0)}
            </Badge>
            <Text size="sm">
              {v.model.name} <code>{v.model.version}</code> · {v.model.route}
              {v.cached ? " · cached" : ""}
            </Text>
          </Stack>
        </Group>
        <ValueScale
          value={v.value}
          low={v.interval.low}
          high={v.interval.high}
          coverage={v.interval.coverage}
          currency={v.currency}
        />
        {v.fallbackMessage && (
          <Alert color="orange" title={`Fallback: ${v.fallbackReason ?? ""}`}>
            {v.fallbackMessage}
          </Alert>
        )}
        {v.warnings.length > 0 && (
          <Alert color="yellow" title="Warnings" mt="sm" data-testid="warnings">
            <Stack gap={2}>
              {v.warnings.map((w) => (
                <Text size="sm" key={w.field + w.code}>
                  <code>{w.field}</code> {w.code}: {w.message}
                </Text>
              ))}
            </Stack>
          </Alert>
        )}
      </Card>
      <Suspense fallback={<Loading label="Drawing" />}>
        {v.explanation && (
          <Card withBorder>
            <Title order={3} size="h4" mb="xs">
              Why this value
            </Title>
            <Waterfall explanation={v.explanation} value={v.value} currency={v.currency} />
          </Card>
        )}
        {v.comparables.length > 0 && (
          <Card withBorder>
            <Title order={3} size="h4" mb="xs">
              Comparables
            </Title>
            {(() => {
              const subject = coords(sent);
              const pts = v.comparables.flatMap((c) => {
                const p = coords(c.attributes);
                return p ? [{ id: c.id, ...p, label: `${c.id}: ${money(c.price, v.currency)}` }] : [];
              });
              return geo && subject && pts.length > 0 ? (
                <CompsMap
                  subject={{ id: "subject", ...subject, label: "the asset valued" }}
                  comparables={pts}
                  resolution={geo.h3Resolution}
                  tileUrl={tileUrl}
                />
              ) : null;
            })()}
            <div className="table-scroll" tabIndex={0}>
              <Table striped mt="sm" data-testid="comparables">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Sale</Table.Th>
                    <Table.Th>Sold</Table.Th>
                    <Table.Th ta="right">Price</Table.Th>
                    <Table.Th ta="right">Adjusted</Table.Th>
                    <Table.Th ta="right">Similarity</Table.Th>
                    <Table.Th ta="right">Distance</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {v.comparables.map((c) => (
                    <Table.Tr key={c.id}>
                      <Table.Td>{c.id}</Table.Td>
                      <Table.Td>{day(c.soldAt)}</Table.Td>
                      <Table.Td ta="right">{money(c.price, v.currency)}</Table.Td>
                      <Table.Td ta="right">{money(c.adjustedPrice, v.currency)}</Table.Td>
                      <Table.Td ta="right">{pct(c.similarity * 100, 0)}</Table.Td>
                      <Table.Td ta="right">{geo ? `${c.distanceKm.toFixed(2)} km` : "—"}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </div>
          </Card>
        )}
      </Suspense>
    </Stack>
  );
}

export default function ValuePage() {
  const { api } = useSession();
  const classes = useAssetClasses();
  const config = useConsoleConfig();
  const [className, setClassName] = useState<string | null>(null);
  const [values, setValues] = useState<FormValues>({});
  const [assetId, setAssetId] = useState("");
  const [skipCache, setSkipCache] = useState(false);
  const cls = useMemo(
    () => classes.data?.find((c) => c.name === (className ?? classes.data?.[0]?.name)),
    [classes.data, className],
  );
  const valuation = useMutation({
    mutationFn: async () => {
      const attributes = formToAttributes(cls!.fields, values);
      const v = await unwrap(
        api.POST("/v1/valuations", {
          body: {
            assetClass: cls!.name,
            ...(assetId.trim() ? { assetId: assetId.trim() } : {}),
            ...(Object.keys(attributes).length > 0 || !assetId.trim() ? { attributes } : {}),
            ...(skipCache ? { skipCache: true } : {}),
          },
        }),
      );
      return { v, sent: attributes };
    },
  });
  return (
    <Stack>
      <Title order={2}>Value an asset</Title>
      <QueryState query={classes} empty={(d) => d.length === 0 && "No asset class is open to this key."}>
        {(list) => (
          <Grid>
            <Grid.Col span={{ base: 12, md: 5 }}>
              <Card
                withBorder
                component="form"
                aria-label="Asset"
                onSubmit={(e) => {
                  e.preventDefault();
                  valuation.mutate();
                }}
              >
                <Stack>
                  <Select
                    label="Asset class"
                    data={list.map((c) => c.name)}
                    value={cls?.name ?? null}
                    onChange={(v) => {
                      setClassName(v);
                      setValues({});
                      valuation.reset();
                    }}
                    allowDeselect={false}
                  />
                  <TextInput
                    label="Asset id"
                    description="Value a registered asset by its id instead of (or on top of) its attributes"
                    value={assetId}
                    onChange={(e) => setAssetId(e.currentTarget.value)}
                  />
                  {cls && (
                    <SimpleGrid cols={{ base: 1, sm: 2 }}>
                      {cls.fields.map((f) => (
                        <FieldInput
                          key={f.name}
                          f={f}
                          value={values[f.name] ?? ""}
                          onChange={(v) => setValues((old) => ({ ...old, [f.name]: v }))}
                        />
                      ))}
                    </SimpleGrid>
                  )}
                  <Button variant="default" onClick={() => cls && setValues(exampleValues(cls.fields))}>
                    Fill with an example
                  </Button>
                  <Switch
                    label="Skip the cache"
                    checked={skipCache}
                    onChange={(e) => setSkipCache(e.currentTarget.checked)}
                  />
                  <Button type="submit" loading={valuation.isPending}>
                    Value
                  </Button>
                  <Text size="xs" c="dimmed">
                    {cls ? `${int(cls.fields.length)} fields · model ${cls.model} · ${cls.currency}` : ""}
                  </Text>
                </Stack>
              </Card>
            </Grid.Col>
            <Grid.Col span={{ base: 12, md: 7 }}>
              <ErrorNotice title="Not valued" error={valuation.error} />
              {valuation.data && cls && (
                <Result
                  v={valuation.data.v}
                  sent={valuation.data.sent}
                  cls={cls}
                  tileUrl={config.data?.tileUrl ?? null}
                />
              )}
              {!valuation.data && !valuation.error && (
                <Text c="dimmed" size="sm">
                  Fill in what you know and press Value: the answer shows the value, its interval, why, and
                  the sales it was compared with.
                </Text>
              )}
            </Grid.Col>
          </Grid>
        )}
      </QueryState>
    </Stack>
  );
}
